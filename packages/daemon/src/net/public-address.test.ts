import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isPrivateAddress } from "./public-address.js";

describe("addresses the box reaches for others only when public", () => {
  it("refuses the box's own networks and anything not unicast", () => {
    for (const address of [
      "127.0.0.1",
      "127.8.9.10",
      "0.0.0.0",
      "10.1.2.3",
      "172.20.0.1",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "224.0.0.251",
      "255.255.255.255",
      "::",
      "::1",
      "fe80::1",
      "fd00::5",
      "ff02::1",
      "::ffff:127.0.0.1",
      "::ffff:7f00:1",
      "::ffff:192.168.0.10",
      "not-an-address",
    ]) {
      assert.equal(isPrivateAddress(address), true, address);
    }
  });

  it("lets public addresses through", () => {
    for (const address of [
      "1.1.1.1",
      "52.1.2.3",
      "172.32.0.1",
      "2606:4700::1111",
      "::ffff:8.8.8.8",
    ]) {
      assert.equal(isPrivateAddress(address), false, address);
    }
  });
});
