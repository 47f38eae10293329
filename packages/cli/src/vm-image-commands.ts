import type { Command } from "commander";
import type { VmImageDownload } from "@townos/client";
import { setTimeout as sleep } from "node:timers/promises";
import { clientKit, type JsonFlag } from "./client-kit.js";
import { formatBytes, table } from "./text.js";
import type { Io } from "./io.js";

/** How often `add` asks for its download's progress. */
const POLL_MS = 500;

/** `town vm-image …`: the base disk images VMs run on. */
export function registerVmImageCommands(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
): void {
  const { client, print, json } = clientKit(program, io);

  const vmImage = program.command("vm-image").description("VM images: the disks VMs start from");
  vmImage
    .command("ls")
    .description("every VM image with its size, virtual size and source; downloads under way")
    .option("--json")
    .action(async (flags: JsonFlag) => {
      const list = await (await client()).vmImages();
      if (flags.json) {
        json(list);
        return;
      }
      print(
        list.images.length === 0
          ? "there are no VM images"
          : table(
              ["NAME", "SIZE", "VIRTUAL", "USED BY", "SOURCE"],
              list.images.map((image) => [
                image.name,
                formatBytes(image.fileSize),
                formatBytes(image.virtualSize),
                image.usedBy.length === 0 ? "-" : image.usedBy.join(","),
                image.source ?? "-",
              ]),
            ),
      );
      if (list.downloads.length > 0) {
        print(
          table(
            ["ADDING", "STATE", "SOURCE"],
            list.downloads.map((d) => [d.name, downloadState(d), d.url]),
          ),
        );
      }
    });

  vmImage
    .command("add")
    .description("download an image from a URL into the store, showing progress until it is ready")
    .argument("<url>")
    .option("--name <name>", "the image's name (default: made from the URL)")
    .option("--sha256 <sum>", "the sha256 the downloaded file must have")
    .action(async (url: string, flags: { name?: string; sha256?: string }) => {
      const api = await client();
      const started = await api.addVmImage({
        url,
        ...(flags.name === undefined ? {} : { name: flags.name }),
        ...(flags.sha256 === undefined ? {} : { sha256: flags.sha256 }),
      });
      const { name } = started;
      // Progress on stderr: redrawn in place on a terminal, a line per change otherwise.
      let shown = "";
      for (;;) {
        const list = await api.vmImages();
        const image = list.images.find((i) => i.name === name);
        const download = list.downloads.find((d) => d.name === name);
        if (download?.error !== undefined && download.error !== null) {
          if (io.interactive && shown !== "") io.stderr("\n");
          io.stderr(`town: adding ${name} failed: ${download.error}\n`);
          setExit(1);
          return;
        }
        if (!download && image) {
          if (io.interactive && shown !== "") io.stderr("\n");
          print(
            `added ${name}: ${image.format}, virtual size ${formatBytes(image.virtualSize)}, ${formatBytes(image.fileSize)} on disk`,
          );
          return;
        }
        if (!download) {
          io.stderr(`town: the download of ${name} is gone: dismissed or deleted meanwhile\n`);
          setExit(1);
          return;
        }
        const state = `${name}: ${downloadState(download)}`;
        if (state !== shown) {
          io.stderr(io.interactive ? `\r${state.padEnd(shown.length)}` : `${state}\n`);
          shown = state;
        }
        await sleep(POLL_MS);
      }
    });

  vmImage
    .command("rm")
    .description("delete a VM image no installed app uses, or dismiss its failed download")
    .argument("<name>")
    .action(async (name: string) => {
      await (await client()).removeVmImage(name);
      print(`deleted ${name}`);
    });
}

/** "downloading 45% (12.0 MiB of 26.0 MiB)", "converting", "failed: …". */
export function downloadState(download: VmImageDownload): string {
  if (download.error !== null) return `failed: ${download.error}`;
  if (download.phase === "check") return "checking";
  if (download.phase === "convert") return "converting";
  const received = formatBytes(download.receivedBytes);
  if (download.totalBytes === null || download.totalBytes === 0) return `downloading ${received}`;
  const percent = Math.min(100, Math.floor((download.receivedBytes / download.totalBytes) * 100));
  return `downloading ${percent}% (${received} of ${formatBytes(download.totalBytes)})`;
}
