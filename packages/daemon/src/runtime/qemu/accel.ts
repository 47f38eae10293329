/**
 * Which accelerator QEMU gets: KVM only when it really runs a guest here.
 * A `/dev/kvm` that exists is no proof: on some hosts it is a paravirtual
 * flavour on which ordinary guests hang after the BIOS. So a tiny guest (a
 * hand-assembled boot sector that prints a marker to the serial port) is
 * booted under KVM with a time limit; KVM when the marker appears, else TCG.
 * `TOWN_VM_ACCEL=kvm|tcg` skips the probe.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TownError } from "@townos/format";
import { HEADLESS, machineArgs, type Accelerator } from "./qemu-args.js";

/** What the probe guest prints on COM1. */
export const PROBE_MARKER = "TOWN-VM-PROBE-OK";
const PROBE_TIMEOUT_MS = 5_000;
const SECTOR_BYTES = 512;
const LOAD_ADDRESS = 0x7c00;
const BOOT_DISK_BYTES = 1024 * 1024;

/**
 * A BIOS boot sector that writes `message` to COM1 (0x3f8) and halts:
 *
 *     cld; xor ax,ax; mov ds,ax; mov dx,0x3f8; mov si,msg
 *     l: lodsb; test al,al; jz h; out dx,al; jmp l
 *     h: hlt; jmp h
 *     msg: db message, 0
 *
 * and the 0x55 0xAA signature.
 */
export function bootSector(message: string): Buffer {
  const code = [
    0xfc, // cld
    0x31,
    0xc0, // xor ax,ax
    0x8e,
    0xd8, // mov ds,ax
    0xba,
    0xf8,
    0x03, // mov dx,0x3f8
    0xbe,
    0x00,
    0x00, // mov si,msg (filled in below)
    0xac, // l: lodsb
    0x84,
    0xc0, // test al,al
    0x74,
    0x03, // jz h (+3)
    0xee, // out dx,al
    0xeb,
    0xf8, // jmp l (-8)
    0xf4, // h: hlt
    0xeb,
    0xfd, // jmp h (-3)
  ];
  const text = Buffer.from(message, "latin1");
  if (!/^[ -~\r\n]*$/.test(message) || code.length + text.length + 1 > SECTOR_BYTES - 2)
    throw new TownError(
      "invalid_argument",
      "the boot sector's message must be short printable ASCII",
    );
  const msg = LOAD_ADDRESS + code.length;
  code[9] = msg & 0xff;
  code[10] = msg >> 8;
  const sector = Buffer.alloc(SECTOR_BYTES);
  Buffer.from(code).copy(sector, 0);
  text.copy(sector, code.length);
  sector[SECTOR_BYTES - 2] = 0x55;
  sector[SECTOR_BYTES - 1] = 0xaa;
  return sector;
}

/**
 * A raw disk that boots `bootSector(message)`: SeaBIOS cannot read a disk
 * as small as one sector ("could not read the boot disk"), so it is padded.
 */
export function bootDisk(message: string): Buffer {
  const disk = Buffer.alloc(BOOT_DISK_BYTES);
  bootSector(message).copy(disk);
  return disk;
}

/** The probe guest's argv after the program: the raw boot sector, its serial port on stdout. */
export function probeArgs(accelerator: Accelerator, image: string): string[] {
  return [
    ...HEADLESS,
    ...machineArgs(accelerator),
    "-m",
    "16",
    "-blockdev",
    JSON.stringify({ driver: "file", filename: image, "node-name": "probe", "read-only": true }),
    "-device",
    "virtio-blk-pci,drive=probe,bootindex=0",
    "-serial",
    "stdio",
  ];
}

export interface ProbeOptions {
  qemuBinary?: string;
  timeoutMs?: number;
}

/**
 * Boots the probe guest under `accelerator`: true when its marker appears on
 * the serial port within the time limit. QEMU is killed either way.
 */
export async function bootsUnder(
  accelerator: Accelerator,
  options: ProbeOptions = {},
): Promise<boolean> {
  const dir = await mkdtemp(join(tmpdir(), "town-vm-probe-"));
  try {
    const image = join(dir, "probe.img");
    await writeFile(image, bootDisk(`${PROBE_MARKER}\r\n`), { mode: 0o600 });
    return await new Promise<boolean>((resolve) => {
      const child = spawn(
        options.qemuBinary ?? "qemu-system-x86_64",
        probeArgs(accelerator, image),
        {
          stdio: ["ignore", "pipe", "ignore"],
        },
      );
      let seen = "";
      let settled = false;
      const done = (answer: boolean): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        child.kill("SIGKILL");
        resolve(answer);
      };
      const timer = setTimeout(() => {
        done(false);
      }, options.timeoutMs ?? PROBE_TIMEOUT_MS);
      child.stdout.on("data", (chunk: Buffer) => {
        // Only the tail matters: the marker may straddle two chunks.
        seen = (seen + chunk.toString("latin1")).slice(-256);
        if (seen.includes(PROBE_MARKER)) done(true);
      });
      child.once("error", () => {
        done(false);
      });
      child.once("exit", () => {
        done(seen.includes(PROBE_MARKER));
      });
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The accelerator for this host, probed once per call of this factory (the
 * daemon makes one): `TOWN_VM_ACCEL` when set, else KVM when the probe guest
 * boots under it, else TCG.
 */
export function acceleratorProbe(
  options: ProbeOptions & { env?: NodeJS.ProcessEnv } = {},
): () => Promise<Accelerator> {
  let answer: Promise<Accelerator> | undefined;
  return () => {
    answer ??= (async () => {
      const forced = (options.env ?? process.env)["TOWN_VM_ACCEL"];
      if (forced === "kvm" || forced === "tcg") return forced;
      if (forced !== undefined && forced !== "")
        throw new TownError("invalid_argument", `TOWN_VM_ACCEL is "${forced}"; kvm or tcg`);
      return (await bootsUnder("kvm", options)) ? "kvm" : "tcg";
    })();
    return answer;
  };
}
