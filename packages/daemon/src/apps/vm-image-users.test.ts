import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { installOf } from "../../test/apps/fakes.js";
import { asVm, compileExample } from "../../test/runtime/examples.js";
import { vmImageName } from "../runtime/qemu/image-name.js";
import { openDatabase } from "../store/database.js";
import { Installs } from "../store/installs.js";
import { vmImageUsers } from "./vm-image-users.js";

const URL = "https://images.example/router/disk.qcow2.xz";

describe("which apps run a VM on an image", () => {
  it("counts an app by its own VM or a dependency's, by store name or URL, once each", () => {
    const installs = new Installs(openDatabase(":memory:"), () => 0);
    installs.put(installOf(asVm(compileExample("hello", "1.0"), "tiny")));
    const guestbook = compileExample("guestbook", "1.0");
    const [store] = guestbook.dependencies;
    assert.ok(store);
    installs.put(
      installOf({
        ...asVm(guestbook, URL),
        dependencies: [{ ...asVm(store, URL), key: store.key }],
      }),
    );
    // A container app uses no VM image.
    installs.put(installOf({ ...compileExample("hello", "1.0"), name: "plain" }));
    assert.deepEqual([...vmImageUsers(installs.list())].sort(), [
      [vmImageName(URL), ["default/guestbook"]],
      ["tiny", ["default/hello"]],
    ]);
  });
});
