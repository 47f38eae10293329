import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isImageUrl, VM_IMAGE_NAME, vmImageName } from "./image-name.js";

describe("vmImageName", () => {
  it("names a URL by its file, without image and compression extensions, plus a hash of the URL", () => {
    const name = vmImageName("https://cloud.example.org/debian/debian-12-generic-amd64.qcow2");
    assert.match(name, /^debian-12-generic-amd64-[0-9a-f]{8}$/);
    assert.match(
      vmImageName("http://10.0.0.2/haos_ova-11.1.img.xz"),
      /^haos_ova-11\.1-[0-9a-f]{8}$/,
    );
  });

  it("gives two URLs with the same file name different names", () => {
    assert.notEqual(
      vmImageName("https://a.example/disk.qcow2"),
      vmImageName("https://b.example/disk.qcow2"),
    );
  });

  it("makes hostile or empty file names into store names", () => {
    for (const url of [
      "https://x.example/",
      "https://x.example/..%2F..%2Fetc%2Fpasswd",
      "https://x.example/%E0%A4%A",
      "https://x.example/.hidden.qcow2",
      `https://x.example/${"a".repeat(500)}.img`,
      "https://x.example/a%0Ab.img",
      "https://x.example/a..b...c.raw",
    ]) {
      const name = vmImageName(url);
      assert.match(name, VM_IMAGE_NAME, `${url} → ${name}`);
      assert.ok(!name.includes(".."), name);
    }
  });

  it("takes anything but an http(s) URL as a store name already", () => {
    assert.equal(vmImageName("debian-12"), "debian-12");
    assert.equal(isImageUrl("debian-12"), false);
    assert.equal(isImageUrl("HTTPS://x.example/a.img"), true);
  });
});
