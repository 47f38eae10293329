/**
 * How the box gets its address, on the Settings page of administrators:
 * DHCP (the default) or a fixed IPv4 address on one wired interface. Saved
 * on the data pool; the box moves at once, so the new address is shown as a
 * link to follow.
 */
import { useState, type SyntheticEvent } from "react";
import type { NetworkSettings as Settings, SetNetworkSettingsBody } from "@townos/client";
import { client, useAction, useLoad } from "../api.js";
import { ErrorBox, Section, TextField } from "../components.js";
import { t } from "../messages.js";

/** The daemon's own port on the image, which answers on every address of the box. */
const DASHBOARD_PORT = 5309;

interface Form {
  mode: "dhcp" | "static";
  interface: string;
  address: string;
  gateway: string;
  dns: string;
}

function formOf(settings: Settings | undefined, firstInterface: string): Form {
  return settings?.mode === "static"
    ? { ...settings, dns: settings.dns.join(", ") }
    : { mode: "dhcp", interface: firstInterface, address: "", gateway: "", dns: "" };
}

function bodyOf(form: Form): SetNetworkSettingsBody {
  if (form.mode === "dhcp") return { mode: "dhcp" };
  const dns = form.dns.split(/[\s,]+/).filter((server) => server !== "");
  return {
    mode: "static",
    interface: form.interface,
    address: form.address,
    gateway: form.gateway,
    dns,
  };
}

export function NetworkSettings() {
  const status = useLoad(() => client.networkSettings(), "network-settings");
  const { problem, busy, act } = useAction(status.reload);
  const [edited, setEdited] = useState<Form>();
  const [movedTo, setMovedTo] = useState<string>();
  const interfaces = status.data?.interfaces ?? [];
  const form = edited ?? formOf(status.data?.settings, interfaces[0]?.name ?? "");
  const change = (fields: Partial<Form>): void => {
    setEdited({ ...form, ...fields });
  };
  // Problems at a field go beside it (`dns.1` beside the DNS servers); the rest in the box above.
  const fieldError = (name: keyof Form): string | undefined =>
    problem?.issues
      ?.filter((issue) => issue.field === name || issue.field?.startsWith(`${name}.`))
      .map((issue) => issue.message)
      .join("; ") || undefined;
  const atFields = problem?.issues?.some((issue) =>
    ["interface", "address", "gateway", "dns"].includes(issue.field?.split(".")[0] ?? ""),
  );

  const save = (event: SyntheticEvent): void => {
    event.preventDefault();
    setMovedTo(undefined);
    void act(async () => {
      const saved = await client.setNetworkSettings(bodyOf(form));
      setEdited(undefined);
      if (saved.settings.mode === "static" && saved.served && !saved.overridden)
        setMovedTo(`http://${saved.settings.address.split("/")[0]}:${DASHBOARD_PORT}/`);
    });
  };

  const field = (name: "address" | "gateway" | "dns", label: string, placeholder: string) => (
    <>
      <TextField
        label={label}
        value={form[name]}
        placeholder={placeholder}
        aria-invalid={fieldError(name) !== undefined}
        onChange={(value) => {
          change({ [name]: value });
        }}
      />
      {fieldError(name) && <p className="field-error">{fieldError(name)}</p>}
    </>
  );

  return (
    <Section title={t("osNetwork.title")}>
      <p className="muted">
        {t(status.data?.served === false ? "osNetwork.unused" : "osNetwork.about")}
      </p>
      {status.data?.overridden && <p className="notice">{t("osNetwork.overridden")}</p>}
      {status.data?.error && (
        <p className="field-error">{t("osNetwork.failed", { error: status.data.error })}</p>
      )}
      {status.error && <ErrorBox problem={status.error} onRetry={status.reload} />}
      {problem && !atFields && <ErrorBox problem={problem} />}
      {movedTo && (
        <p className="notice" role="status">
          {t("osNetwork.moved")} <a href={movedTo}>{movedTo}</a>
        </p>
      )}
      {status.data && (
        <form className="form" noValidate onSubmit={save}>
          <fieldset>
            <legend>{t("osNetwork.mode")}</legend>
            {(["dhcp", "static"] as const).map((mode) => (
              <label key={mode} className="choice">
                <input
                  type="radio"
                  name="network-mode"
                  checked={form.mode === mode}
                  onChange={() => {
                    change({ mode });
                  }}
                />
                {t(mode === "dhcp" ? "osNetwork.dhcp" : "osNetwork.static")}
              </label>
            ))}
          </fieldset>
          {form.mode === "static" && (
            <>
              <label>
                {t("osNetwork.interface")}
                <select
                  value={form.interface}
                  aria-invalid={fieldError("interface") !== undefined}
                  onChange={(event) => {
                    change({ interface: event.target.value });
                  }}
                >
                  {interfaces.map((wired) => (
                    <option key={wired.name} value={wired.name}>
                      {wired.name}
                      {wired.addresses.length > 0 &&
                        ` (${t("osNetwork.now")} ${wired.addresses.join(", ")})`}
                    </option>
                  ))}
                </select>
              </label>
              {fieldError("interface") && <p className="field-error">{fieldError("interface")}</p>}
              {field("address", t("osNetwork.address"), "192.168.1.50/24")}
              {field("gateway", t("osNetwork.gateway"), "192.168.1.1")}
              {field("dns", t("osNetwork.dns"), "")}
              <p className="notice">{t("osNetwork.warning", { port: DASHBOARD_PORT })}</p>
            </>
          )}
          <button type="submit" disabled={busy}>
            {t("osNetwork.save")}
          </button>
        </form>
      )}
    </Section>
  );
}
