import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { listeningPorts, parseSocketTable } from "./host-ports.js";

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:14BD 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
`;
const TCP6 = `  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000
`;
const UDP = `  sl  local_address rem_address   st
  1: 00000000:0035 00000000:0000 07 00000000:00000000
`;

describe("host ports", () => {
  it("reads listening TCP sockets (not connections) and bound UDP sockets", () => {
    assert.deepEqual(parseSocketTable(TCP, "tcp"), [5309]);
    assert.deepEqual(parseSocketTable(TCP6, "tcp"), [80]);
    assert.deepEqual(parseSocketTable(UDP, "udp"), [53]);
    assert.deepEqual(parseSocketTable("header only\n", "tcp"), []);
  });

  it("finds a port this process listens on", async () => {
    const { createServer } = await import("node:net");
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    assert.ok(address !== null && typeof address === "object");
    try {
      assert.ok((await listeningPorts()).has(address.port));
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
