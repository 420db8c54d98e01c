// verify-v1a.mjs: an implementation of Standard Webhooks v1a (ed25519)
// verification independent of EthHook's Go code: Node's own crypto
// (OpenSSL), no EthHook code and no Go. The Go tests feed it deliveries.
//
// stdin: one JSON object a line:
//   {"public_key": "whpk_...", "id": "...", "timestamp": "...",
//    "signature": "<webhook-signature header>", "body_b64": "<raw body, base64>"}
// stdout: one line per input, {"ok": true} or {"ok": false, "error": "..."}.
// The timestamp must be within 5 minutes of now, as a receiver checks.
import crypto from "node:crypto";
import readline from "node:readline";

// SubjectPublicKeyInfo header of an Ed25519 key (RFC 8410): the raw 32
// bytes follow it.
const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex");

function publicKey(whpk) {
  if (!whpk.startsWith("whpk_")) throw new Error("public key must start with whpk_");
  const raw = Buffer.from(whpk.slice(5), "base64");
  if (raw.length !== 32) throw new Error(`public key has ${raw.length} bytes, want 32`);
  return crypto.createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: "der", type: "spki" });
}

function verify(m) {
  const key = publicKey(m.public_key);
  const ts = Number.parseInt(m.timestamp, 10);
  if (!Number.isFinite(ts) || Math.abs(Date.now() / 1000 - ts) > 300) throw new Error("timestamp outside the tolerance");
  const signed = Buffer.concat([Buffer.from(`${m.id}.${m.timestamp}.`), Buffer.from(m.body_b64, "base64")]);
  for (const s of m.signature.split(" ")) {
    const comma = s.indexOf(",");
    if (comma < 0 || s.slice(0, comma) !== "v1a") continue;
    const sig = Buffer.from(s.slice(comma + 1), "base64");
    if (sig.length === 64 && crypto.verify(null, signed, key, sig)) return;
  }
  throw new Error("no v1a signature matches");
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  try {
    verify(JSON.parse(line));
    console.log(JSON.stringify({ ok: true }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: String(e.message || e) }));
  }
}
