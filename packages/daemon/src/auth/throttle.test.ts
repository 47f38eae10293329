import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import { LoginThrottle, sourceKey } from "./throttle.js";

function fakeClock(start = 1_700_000_000_000) {
  let now = start;
  return { clock: () => now, advance: (ms: number) => (now += ms) };
}

const limited = (e: unknown) => e instanceof TownError && e.code === "rate_limited";

describe("login throttle", () => {
  it("refuses a source after its attempts until the window passes", () => {
    const { clock, advance } = fakeClock();
    const throttle = new LoginThrottle({ maxFailures: 3, windowMs: 60_000 }, clock);
    for (let i = 0; i < 3; i++) throttle.reserve("10.0.0.1");
    assert.throws(
      () => throttle.reserve("10.0.0.1"),
      (e) => limited(e) && e instanceof TownError && e.retryAfter === 60,
    );
    throttle.reserve("10.0.0.2");
    advance(60_001);
    throttle.reserve("10.0.0.1");
  });

  it("takes the slot when asked, so attempts still running count", () => {
    const throttle = new LoginThrottle({ maxFailures: 2, windowMs: 60_000 }, fakeClock().clock);
    // Nothing is reported back between these: the guesses are all still being checked.
    throttle.reserve("10.0.0.1");
    throttle.reserve("10.0.0.1");
    assert.throws(() => throttle.reserve("10.0.0.1"), limited);
  });

  it("forgives a success's own account's tries, not guesses at other accounts", () => {
    const { clock, advance } = fakeClock();
    const throttle = new LoginThrottle({ maxFailures: 3, windowMs: 60_000 }, clock);
    throttle.reserve("10.0.0.1", "alice");
    throttle.reserve("10.0.0.1", "mallory");
    advance(1);
    throttle.succeed(throttle.reserve("10.0.0.1", "mallory"));
    advance(1);
    // alice's first guess is still counted: three in all now.
    throttle.reserve("10.0.0.1", "alice");
    throttle.reserve("10.0.0.1", "mallory");
    assert.throws(() => throttle.reserve("10.0.0.1", "mallory"), limited);
    advance(1);
    const throttle2 = new LoginThrottle({ maxFailures: 2, windowMs: 60_000 }, clock);
    throttle2.reserve("10.0.0.1", "alice");
    throttle2.succeed(throttle2.reserve("10.0.0.1", "alice"));
    throttle2.reserve("10.0.0.1", "alice");
    throttle2.reserve("10.0.0.1", "alice");
    assert.throws(() => throttle2.reserve("10.0.0.1", "alice"), limited);
  });

  it("forgets the oldest sources beyond its bound", () => {
    const throttle = new LoginThrottle(
      { maxFailures: 1, windowMs: 60_000, maxSources: 2 },
      fakeClock().clock,
    );
    for (const source of ["10.0.0.1", "10.0.0.2", "10.0.0.3"]) throttle.reserve(source);
    throttle.reserve("10.0.0.1");
    assert.throws(() => throttle.reserve("10.0.0.3"), limited);
  });

  it("counts the addresses of one IPv6 /64 as one source", () => {
    const throttle = new LoginThrottle({ maxFailures: 3, windowMs: 60_000 }, fakeClock().clock);
    throttle.reserve("2001:db8:1:2::1");
    throttle.reserve("2001:db8:1:2:aaaa:bbbb:cccc:dddd");
    throttle.reserve("2001:0db8:0001:0002:ffff::%eth0");
    assert.throws(() => throttle.reserve("2001:db8:1:2:1234::5"), limited);
    throttle.reserve("2001:db8:1:3::1");
  });

  it("counts an IPv4-mapped IPv6 address as its IPv4 address", () => {
    const throttle = new LoginThrottle({ maxFailures: 2, windowMs: 60_000 }, fakeClock().clock);
    throttle.reserve("::ffff:192.168.1.20");
    throttle.reserve("192.168.1.20");
    assert.throws(() => throttle.reserve("::FFFF:192.168.1.20"), limited);
    throttle.reserve("192.168.1.21");
  });
});

describe("sourceKey", () => {
  it("keys IPv6 by /64 in one spelling, IPv4 by address", () => {
    const cases: [string, string][] = [
      ["192.168.1.20", "192.168.1.20"],
      ["::ffff:10.1.2.3", "10.1.2.3"],
      ["::1", "0:0:0:0::/64"],
      ["::", "0:0:0:0::/64"],
      ["fe80::1%eth0", "fe80:0:0:0::/64"],
      ["2001:DB8:0:0:1::", "2001:db8:0:0::/64"],
      ["2001:db8:aa:bb:cc:dd:ee:ff", "2001:db8:aa:bb::/64"],
      ["2001:db8::", "2001:db8:0:0::/64"],
      ["64:ff9b::192.0.2.33", "64:ff9b:0:0::/64"],
      ["not an address", "not an address"],
    ];
    for (const [address, key] of cases) assert.equal(sourceKey(address), key, address);
  });
});
