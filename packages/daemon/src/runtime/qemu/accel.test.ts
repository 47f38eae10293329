import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import { rejection } from "../../../test/async.js";
import { acceleratorProbe, bootDisk, bootSector, probeArgs } from "./accel.js";

describe("bootSector", () => {
  it("is the hand-assembled serial printer, its message and the boot signature", () => {
    const sector = bootSector("Hi\r\n");
    assert.equal(sector.length, 512);
    // prettier-ignore
    const code = [
      0xfc,                   // cld
      0x31, 0xc0,             // xor ax,ax
      0x8e, 0xd8,             // mov ds,ax
      0xba, 0xf8, 0x03,       // mov dx,0x3f8
      0xbe, 0x16, 0x7c,       // mov si,0x7c16 (the message, 22 bytes in)
      0xac,                   // lodsb
      0x84, 0xc0,             // test al,al
      0x74, 0x03,             // jz +3 (hlt)
      0xee,                   // out dx,al
      0xeb, 0xf8,             // jmp -8 (lodsb)
      0xf4,                   // hlt
      0xeb, 0xfd,             // jmp -3 (hlt)
    ];
    assert.deepEqual([...sector.subarray(0, 22)], code);
    assert.equal(sector.subarray(22, 27).toString("latin1"), "Hi\r\n\0");
    assert.ok(sector.subarray(27, 510).every((byte) => byte === 0));
    assert.deepEqual([...sector.subarray(510)], [0x55, 0xaa]);
  });

  it("refuses a message that is not short printable ASCII", () => {
    for (const message of ["é", "\u0000", "x".repeat(488)]) {
      assert.throws(() => bootSector(message), TownError);
    }
    assert.equal(bootSector("x".repeat(487)).length, 512);
  });

  it("is padded to a disk SeaBIOS can read", () => {
    const disk = bootDisk("x");
    assert.equal(disk.length, 1024 * 1024);
    assert.deepEqual(disk.subarray(0, 512), bootSector("x"));
  });

  it("boots the probe read-only, its serial port on stdout", () => {
    const args = probeArgs("kvm", "/tmp/p/probe.img");
    assert.deepEqual(args.slice(args.indexOf("-accel"), args.indexOf("-accel") + 4), [
      "-accel",
      "kvm",
      "-cpu",
      "host",
    ]);
    assert.ok(
      args.includes(
        JSON.stringify({
          driver: "file",
          filename: "/tmp/p/probe.img",
          "node-name": "probe",
          "read-only": true,
        }),
      ),
    );
    assert.deepEqual(args.slice(-2), ["-serial", "stdio"]);
  });
});

describe("acceleratorProbe", () => {
  it("takes TOWN_VM_ACCEL without probing, and refuses another value", async () => {
    // A program that does not exist: a probe would answer tcg, never kvm.
    const options = { qemuBinary: "/nonexistent/qemu" };
    assert.equal(await acceleratorProbe({ ...options, env: { TOWN_VM_ACCEL: "kvm" } })(), "kvm");
    assert.equal(await acceleratorProbe({ ...options, env: { TOWN_VM_ACCEL: "tcg" } })(), "tcg");
    const error = await rejection(
      acceleratorProbe({ ...options, env: { TOWN_VM_ACCEL: "hvf" } })(),
    );
    assert.equal(error.code, "invalid_argument");
  });

  it("answers tcg when the probe guest cannot boot under kvm, once per probe", async () => {
    const probe = acceleratorProbe({ qemuBinary: "/nonexistent/qemu", env: {} });
    const first = probe();
    assert.equal(probe(), first, "the answer is cached");
    assert.equal(await first, "tcg");
  });
});
