/** Go's float formatting: strconv.FormatFloat with bitSize 64 (ftoa.go), for fmt's verbs. */

const lowerhex = "0123456789abcdef";

interface Decimal {
  /** Significant digits without leading or trailing zeros ("" for zero). */
  d: string;
  /** Position of the decimal point relative to the start of `d`. */
  dp: number;
}

interface FloatBits {
  neg: boolean;
  /** Biased exponent field. */
  exp: number;
  mant: bigint;
}

function floatBits(v: number): FloatBits {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, v);
  const bits = view.getBigUint64(0);
  return {
    neg: bits >> 63n === 1n,
    exp: Number((bits >> 52n) & 0x7ffn),
    mant: bits & ((1n << 52n) - 1n),
  };
}

function trimZeros(d: string, dp: number): Decimal {
  const t = d.replace(/0+$/, "");
  return { d: t, dp: t === "" ? 0 : dp };
}

/** Exact decimal expansion of mant·2^exp. */
function exactDecimal(mant: bigint, exp: number): Decimal {
  if (mant === 0n) return { d: "", dp: 0 };
  if (exp >= 0) {
    const s = (mant << BigInt(exp)).toString();
    return trimZeros(s, s.length);
  }
  const s = (mant * 5n ** BigInt(-exp)).toString();
  return trimZeros(s, s.length + exp);
}

/** Rounds to nd digits, ties to even, like Go's decimal.Round on an exact value. */
function roundDecimal(x: Decimal, nd: number): Decimal {
  if (nd < 0 || nd >= x.d.length) return x;
  const next = x.d.charCodeAt(nd) - 0x30;
  let up: boolean;
  if (next === 5 && nd + 1 === x.d.length) {
    up = nd > 0 && (x.d.charCodeAt(nd - 1) - 0x30) % 2 === 1;
  } else {
    up = next >= 5;
  }
  if (!up) return trimZeros(x.d.slice(0, nd), x.dp);
  for (let i = nd - 1; i >= 0; i--) {
    const c = x.d.charCodeAt(i) - 0x30;
    if (c < 9) return trimZeros(x.d.slice(0, i) + String(c + 1), x.dp);
  }
  return { d: "1", dp: x.dp + 1 };
}

/** Shortest digits that round-trip; JS and Go agree on these. */
function shortestDecimal(v: number): Decimal {
  if (v === 0) return { d: "", dp: 0 };
  const [m = "", e = "0"] = Math.abs(v).toExponential().split("e");
  return trimZeros(m.replace(".", ""), Number(e) + 1);
}

function fmtE(neg: boolean, x: Decimal, prec: number, fmt: string): string {
  let out = neg ? "-" : "";
  out += x.d === "" ? "0" : x.d.charAt(0);
  if (prec > 0) {
    out += ".";
    const m = Math.min(x.d.length, prec + 1);
    out += x.d.slice(1, m);
    out += "0".repeat(Math.max(0, prec + 1 - Math.max(m, 1)));
  }
  let exp = x.d === "" ? 0 : x.dp - 1;
  out += fmt;
  if (exp < 0) {
    out += "-";
    exp = -exp;
  } else {
    out += "+";
  }
  return out + (exp < 10 ? "0" + String(exp) : String(exp));
}

function fmtF(neg: boolean, x: Decimal, prec: number): string {
  let out = neg ? "-" : "";
  if (x.dp > 0) {
    const m = Math.min(x.d.length, x.dp);
    out += x.d.slice(0, m) + "0".repeat(x.dp - m);
  } else {
    out += "0";
  }
  if (prec > 0) {
    out += ".";
    for (let i = 1; i <= prec; i++) {
      const j = x.dp + i - 1;
      out += j >= 0 && j < x.d.length ? x.d.charAt(j) : "0";
    }
  }
  return out;
}

function fmtB(neg: boolean, mant: bigint, exp: number): string {
  const e = exp - 52;
  return `${neg ? "-" : ""}${mant}p${e >= 0 ? "+" : ""}${e}`;
}

function fmtX(prec: number, fmt: "x" | "X", neg: boolean, mant0: bigint, exp0: number): string {
  let mant = mant0;
  let exp = mant === 0n ? 0 : exp0;
  const mask64 = (1n << 64n) - 1n;
  mant = (mant << 8n) & mask64;
  while (mant !== 0n && (mant & (1n << 60n)) === 0n) {
    mant = (mant << 1n) & mask64;
    exp--;
  }
  if (prec >= 0 && prec < 15) {
    const shift = BigInt(prec * 4);
    const extra = (mant << shift) & ((1n << 60n) - 1n);
    mant >>= 60n - shift;
    if ((extra | (mant & 1n)) > 1n << 59n) mant++;
    mant = (mant << (60n - shift)) & mask64;
    if ((mant & (1n << 61n)) !== 0n) {
      mant >>= 1n;
      exp++;
    }
  }
  const digits = fmt === "X" ? lowerhex.toUpperCase() : lowerhex;
  let out = `${neg ? "-" : ""}0${fmt}${String((mant >> 60n) & 1n)}`;
  mant = (mant << 4n) & mask64;
  const digit = (): string => digits[Number((mant >> 60n) & 15n)] ?? "0";
  if (prec < 0 && mant !== 0n) {
    out += ".";
    while (mant !== 0n) {
      out += digit();
      mant = (mant << 4n) & mask64;
    }
  } else if (prec > 0) {
    out += ".";
    for (let i = 0; i < prec; i++) {
      out += digit();
      mant = (mant << 4n) & mask64;
    }
  }
  out += fmt === "X" ? "P" : "p";
  out += exp < 0 ? "-" : "+";
  const a = Math.abs(exp);
  return out + (a < 10 ? "0" + String(a) : String(a));
}

export type FloatFormat = "b" | "e" | "E" | "f" | "g" | "G" | "x" | "X";

/** strconv.FormatFloat(v, fmt, prec, 64). */
export function formatFloat(v: number, fmt: FloatFormat, precIn: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  const bits = floatBits(v);
  let exp = bits.exp;
  let mant = bits.mant;
  if (exp === 0) exp++;
  else mant |= 1n << 52n;
  exp -= 1023;
  if (fmt === "b") return fmtB(bits.neg, mant, exp);
  if (fmt === "x" || fmt === "X") return fmtX(precIn, fmt, bits.neg, mant, exp);
  let prec = precIn;
  const shortest = prec < 0;
  let digs: Decimal;
  if (shortest) {
    digs = shortestDecimal(v);
    if (fmt === "e" || fmt === "E") prec = Math.max(digs.d.length - 1, 0);
    else if (fmt === "f") prec = Math.max(digs.d.length - digs.dp, 0);
    else prec = digs.d.length;
  } else {
    const exact = exactDecimal(mant, exp - 52);
    if (fmt === "e" || fmt === "E") digs = roundDecimal(exact, prec + 1);
    else if (fmt === "f") digs = roundDecimal(exact, exact.dp + prec);
    else {
      if (prec === 0) prec = 1;
      digs = roundDecimal(exact, prec);
    }
  }
  if (fmt === "e" || fmt === "E") return fmtE(bits.neg, digs, prec, fmt);
  if (fmt === "f") return fmtF(bits.neg, digs, prec);
  let eprec = prec;
  if (eprec > digs.d.length && digs.d.length >= digs.dp) eprec = digs.d.length;
  if (shortest) eprec = 6;
  const e = digs.dp - 1;
  if (e < -4 || e >= eprec) {
    if (prec > digs.d.length) prec = digs.d.length;
    return fmtE(bits.neg, digs, prec - 1, fmt === "g" ? "e" : "E");
  }
  if (prec > digs.dp) prec = digs.d.length;
  return fmtF(bits.neg, digs, Math.max(prec - digs.dp, 0));
}
