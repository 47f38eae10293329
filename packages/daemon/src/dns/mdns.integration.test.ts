import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import packet from "dns-packet";
import { createTestNetns, netnsMissing, type TestNetns } from "../../test/netns.js";
import { MDNS_GROUP, MDNS_PORT, MdnsResponder } from "./mdns.js";

// Multicast here travels a veth pair into a namespace the test makes: never
// onto the machine's real network.
const missing = netnsMissing || digMissing();

function digMissing(): string | false {
  try {
    execFileSync("dig", ["-v"], { stdio: "ignore" });
    return false;
  } catch {
    return "dig is not installed";
  }
}

describe("mDNS responder on a veth into a test namespace", { skip: missing }, () => {
  let netns: TestNetns;
  let responder: MdnsResponder;
  let startedAt: number;

  before(async () => {
    netns = await createTestNetns("town-mdns", 1);
    responder = new MdnsResponder({
      name: "town-os.local",
      addresses: () => [netns.hostAddress, "fd00::10"],
      interfaceAddress: netns.hostAddress,
    });
    await responder.start();
    startedAt = Date.now();
    assert.equal(responder.status().state, "running", responder.status().error);
  });

  after(async () => {
    await responder.stop();
    await netns.remove();
  });

  it("answers a one-shot query from the LAN side (dig -p 5353, unicast)", async () => {
    // dig drops replies that come from another address than it asked, so it
    // cannot ask the group itself; RFC 6762 §5.5 direct queries take this path.
    const dig = (name: string, type: string): Promise<string> =>
      netns.exec([
        "dig",
        `@${netns.hostAddress}`,
        "-p",
        String(MDNS_PORT),
        name,
        type,
        "+short",
        "+time=2",
        "+tries=2",
      ]);
    assert.equal((await dig("Town-OS.local", "A")).trim(), netns.hostAddress);
    assert.equal((await dig("town-os.local", "AAAA")).trim(), "fd00::10");
  });

  it("answers a LAN peer's multicast query with a multicast response, and ignores other names", async () => {
    // The peer runs inside the namespace as a browser's resolver would: it
    // asks from port 5353 and hears the group, and prints what it heard.
    const query = (name: string): string =>
      packet.encode({ type: "query", id: 0, questions: [{ type: "A", name }] }).toString("hex");
    const peer = `
      const dgram = require("node:dgram");
      const socket = dgram.createSocket({ type: "udp4", reuseAddr: true });
      const heard = [];
      socket.on("message", (message, from) => heard.push({ from: from.address, hex: message.toString("hex") }));
      socket.bind(${MDNS_PORT}, () => {
        socket.addMembership("${MDNS_GROUP}", "${netns.namespaceAddress}");
        socket.setMulticastInterface("${netns.namespaceAddress}");
        socket.send(Buffer.from("${query("someone-else.local")}", "hex"), ${MDNS_PORT}, "${MDNS_GROUP}");
        socket.send(Buffer.from("${query("town-os.local")}", "hex"), ${MDNS_PORT}, "${MDNS_GROUP}");
        setTimeout(() => { console.log(JSON.stringify(heard)); socket.close(); }, 1500);
      });`;
    // The responder announces itself twice in its first second: let that pass,
    // so that what the peer hears is the answer to its question.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, startedAt + 1500 - Date.now())));
    const before = responder.status().answered;
    const heard = JSON.parse(await netns.exec([process.execPath, "-e", peer])) as {
      from: string;
      hex: string;
    }[];
    const responses = heard
      .map((message) => packet.decode(Buffer.from(message.hex, "hex")))
      .filter((message) => message.type === "response");
    // A multicast response carries no question (a legacy unicast one echoes it).
    assert.ok(responses.every((response) => (response.questions ?? []).length === 0));
    const answers = responses.flatMap((message) => message.answers ?? []);
    const a = answers.filter((answer) => answer.type === "A");
    assert.ok(a.length >= 1, JSON.stringify(heard));
    for (const answer of answers) {
      assert.ok(answer.type === "A");
      assert.equal(answer.name, "town-os.local");
      assert.equal(answer.data, netns.hostAddress);
      assert.equal(answer.ttl, 120);
      assert.equal(answer.flush, true);
    }
    assert.ok(!answers.some((answer) => answer.name === "someone-else.local"));
    assert.equal(responder.status().answered, before + 1);
  });
});
