// cfsslpy web UI: plain DOM code talking to the cfssl JSON API of the server that served this page.
// Everything is local (no CDN) and there is no inline script, so the page runs under a strict CSP.
"use strict";

// ---- Private keys and PKCS#10 certificate requests made in the browser.
//
// Keys are generated with WebCrypto and never leave the page: the server only ever receives the CSR, and the
// private key is offered to the user as a PKCS#8 PEM download. WebCrypto generates keys, exports them (SPKI,
// PKCS#8) and signs, but the browser has no ASN.1 library and this page loads nothing from elsewhere (strict
// CSP, no CDN). So the few DER structures of a CSR (RFC 2986) are *encoded* here, by the small encoder below:
// SEQUENCE, SET, INTEGER, OBJECT IDENTIFIER, strings, BIT STRING, OCTET STRING and context tags, nothing
// else, and nothing is ever decoded. The tests parse what it produces with cryptography and openssl
// (tests/integration/test_webui_console.py).

(function () {
  // ---- a minimal DER encoder ------------------------------------------------------------------------

  function concat(parts) {
    const total = parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  function length(n) {
    if (n < 0x80) return Uint8Array.of(n);
    const bytes = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    return Uint8Array.of(0x80 | bytes.length, ...bytes);
  }

  const tlv = (tag, content) => concat([Uint8Array.of(tag), length(content.length), content]);
  const seq = (...items) => tlv(0x30, concat(items));
  // A SET with a single member (every SET in a CSR built here has one, so DER's SET OF ordering never arises).
  const set1 = (item) => tlv(0x31, item);
  const utf8 = (s) => tlv(0x0c, new TextEncoder().encode(s));
  const printable = (s) => tlv(0x13, new TextEncoder().encode(s));
  const ia5 = (tag, s) => tlv(tag, new TextEncoder().encode(s));
  const octets = (bytes) => tlv(0x04, bytes);
  const bits = (bytes) => tlv(0x03, concat([Uint8Array.of(0), bytes]));
  const NULL = Uint8Array.of(0x05, 0x00);

  // An unsigned big-endian integer: leading zeros dropped, one zero byte added when the top bit is set.
  function integer(bytes) {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    const body = bytes.subarray(i);
    return tlv(0x02, body[0] & 0x80 ? concat([Uint8Array.of(0), body]) : body);
  }

  function oid(dotted) {
    const arcs = dotted.split(".").map(Number);
    const out = [40 * arcs[0] + arcs[1]];
    for (const arc of arcs.slice(2)) {
      const chunk = [arc & 0x7f];
      for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
      out.push(...chunk);
    }
    return tlv(0x06, Uint8Array.from(out));
  }

  // ---- names and SANs ---------------------------------------------------------------------------------

  // cfssl's order of subject attributes (C, ST, L, O, OU, then CN); the country is a PrintableString.
  const NAME_OIDS = [["C", "2.5.4.6"], ["ST", "2.5.4.8"], ["L", "2.5.4.7"], ["O", "2.5.4.10"], ["OU", "2.5.4.11"], ["CN", "2.5.4.3"]];

  function name(subject) {
    const rdns = [];
    for (const [key, id] of NAME_OIDS) {
      const value = (subject[key] || "").trim();
      if (value) rdns.push(set1(seq(oid(id), key === "C" ? printable(value) : utf8(value))));
    }
    return seq(...rdns);
  }

  function ipv4(text) {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
    if (!m) return null;
    const bytes = m.slice(1).map(Number);
    return bytes.every((b) => b <= 255) ? Uint8Array.from(bytes) : null;
  }

  function ipv6(text) {
    if (!/^[0-9A-Fa-f:.]+$/.test(text) || !text.includes(":")) return null;
    const halves = text.split("::");
    if (halves.length > 2) return null;
    const groups = (part) => (part === "" ? [] : part.split(":"));
    let head = groups(halves[0]);
    let tail = halves.length === 2 ? groups(halves[1]) : [];
    const words = [];
    const parse = (list) => {
      const out = [];
      for (const [i, g] of list.entries()) {
        if (i === list.length - 1 && g.includes(".")) {
          const v4 = ipv4(g);
          if (!v4) return null;
          out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
        } else if (/^[0-9A-Fa-f]{1,4}$/.test(g)) {
          out.push(parseInt(g, 16));
        } else {
          return null;
        }
      }
      return out;
    };
    head = parse(head);
    tail = parse(tail);
    if (!head || !tail) return null;
    const missing = 8 - head.length - tail.length;
    if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
    words.push(...head, ...new Array(halves.length === 2 ? missing : 0).fill(0), ...tail);
    const out = new Uint8Array(16);
    words.forEach((w, i) => {
      out[2 * i] = w >> 8;
      out[2 * i + 1] = w & 0xff;
    });
    return out;
  }

  // One GeneralName for a host, classified as cfssl's CSR code does: an IP address, an email, a URI, or a DNS name.
  function generalName(host) {
    const ip = ipv4(host) || ipv6(host);
    if (ip) return tlv(0x87, ip);
    if (/^[^@\s]+@[^@\s]+$/.test(host)) return ia5(0x81, host);
    if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\/./.test(host)) return ia5(0x86, host);
    return ia5(0x82, host);
  }

  // The [0] attributes: an extensionRequest with subjectAltName when there are hosts, else none.
  function attributes(hosts) {
    if (!hosts.length) return Uint8Array.of(0xa0, 0x00);
    const san = seq(oid("2.5.29.17"), octets(seq(...hosts.map(generalName))));
    const extensionRequest = seq(oid("1.2.840.113549.1.9.14"), set1(seq(san)));
    return tlv(0xa0, extensionRequest);
  }

  // ---- keys and signatures ------------------------------------------------------------------------------

  // What each choice generates, how it signs, and the AlgorithmIdentifier of its signature.
  const ALGORITHMS = {
    "ecdsa-256": { gen: { name: "ECDSA", namedCurve: "P-256" }, sign: { name: "ECDSA", hash: "SHA-256" }, sigAlg: () => seq(oid("1.2.840.10045.4.3.2")), size: 32 },
    "ecdsa-384": { gen: { name: "ECDSA", namedCurve: "P-384" }, sign: { name: "ECDSA", hash: "SHA-384" }, sigAlg: () => seq(oid("1.2.840.10045.4.3.3")), size: 48 },
    ed25519: { gen: { name: "Ed25519" }, sign: { name: "Ed25519" }, sigAlg: () => seq(oid("1.3.101.112")) },
  };
  for (const bitsize of [2048, 3072, 4096]) {
    ALGORITHMS["rsa-" + bitsize] = {
      gen: { name: "RSASSA-PKCS1-v1_5", modulusLength: bitsize, publicExponent: Uint8Array.of(1, 0, 1), hash: "SHA-256" },
      sign: { name: "RSASSA-PKCS1-v1_5" },
      sigAlg: () => seq(oid("1.2.840.113549.1.1.11"), NULL),
    };
  }

  // WebCrypto's ECDSA signature is r || s; X.509 wants SEQUENCE { INTEGER r, INTEGER s }.
  function ecdsaSignature(raw, size) {
    return seq(integer(raw.subarray(0, size)), integer(raw.subarray(size)));
  }

  function available() {
    return Boolean(window.isSecureContext && window.crypto && crypto.subtle);
  }

  let ed25519Support = null;
  async function supportsEd25519() {
    if (ed25519Support === null) {
      try {
        await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
        ed25519Support = true;
      } catch (_) {
        ed25519Support = false;
      }
    }
    return ed25519Support;
  }

  function base64(bytes) {
    let bin = "";
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(bin);
  }

  function pem(label, bytes) {
    const lines = base64(bytes).match(/.{1,64}/g) || [];
    return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
  }

  // Generate a key for `choice` (a key of ALGORITHMS) and a CSR for `subject` ({CN, C, ST, L, O, OU}) and
  // `hosts`; resolve to {csr, privateKey} as PEM text. Nothing is sent anywhere.
  async function generate(choice, subject, hosts) {
    const alg = ALGORITHMS[choice];
    if (!alg) throw new Error("unknown key type " + choice);
    if (!available()) throw new Error("this browser offers no WebCrypto here (it needs HTTPS or localhost): paste a CSR instead");
    const pair = await crypto.subtle.generateKey(alg.gen, true, ["sign", "verify"]);
    const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
    const info = seq(integer(Uint8Array.of(0)), name(subject), spki, attributes(hosts));
    let signature = new Uint8Array(await crypto.subtle.sign(alg.sign, pair.privateKey, info));
    if (alg.size) signature = ecdsaSignature(signature, alg.size);
    const csr = seq(info, alg.sigAlg(), bits(signature));
    const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
    return { csr: pem("CERTIFICATE REQUEST", csr), privateKey: pem("PRIVATE KEY", pkcs8) };
  }

  window.CfsslpyCSR = { available, supportsEd25519, generate, choices: Object.keys(ALGORITHMS) };
})();


(function () {
  const API = "api/v1/cfssl/"; // relative: keeps working behind a reverse proxy that adds a path prefix
  const CONSOLE = "api/v1/cfsslpy/"; // cfsslpy's own read-only endpoints (the console)
  const PAGES = ["certificates", "request", "newkey", "inspect", "ca", "bundle"];
  // keys generated in the browser (csr.js): the WebCrypto curves and sizes
  const KEY_SIZES = { ecdsa: ["256", "384"], rsa: ["2048", "3072", "4096"], ed25519: [] };

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  // ---- talking to the API -------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(code, message, status) {
      super(message);
      this.code = code;
      this.status = status;
    }
  }

  // POST a JSON body to an endpoint; resolve to the whole success envelope, reject with ApiError
  // carrying errors[0] of a failure envelope (or the HTTP status and body text when it is not one).
  async function call(endpoint, body, base = API) {
    return request(base + endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  // GET a console endpoint (or a cfssl one with base = API) with query parameters.
  async function get(endpoint, params, base = CONSOLE) {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== "") query.set(k, v);
    const qs = query.toString();
    return request(base + endpoint + (qs ? "?" + qs : ""), { method: "GET" });
  }

  async function request(url, init) {
    let response;
    try {
      response = await fetch(url, { ...init, credentials: "same-origin", cache: "no-store" });
    } catch (err) {
      throw new ApiError(0, "cannot reach the server: " + err.message, 0);
    }
    const text = await response.text();
    let envelope = null;
    try {
      envelope = JSON.parse(text);
    } catch (_) {
      /* not JSON: reported below with the status */
    }
    if (envelope && typeof envelope === "object" && "success" in envelope) {
      if (envelope.success) return envelope;
      const first = (envelope.errors && envelope.errors[0]) || {};
      throw new ApiError(first.code ?? response.status, first.message || "request failed", response.status);
    }
    const summary = text.trim().slice(0, 500) || response.statusText;
    throw new ApiError(response.status, summary, response.status);
  }

  // ---- authsign token: HMAC-SHA256(hex-decoded key, request bytes) -------------------------------

  function hexToBytes(hex) {
    const clean = hex.trim();
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(clean)) throw new ApiError("", "the auth key must be an even number of hex digits", 0);
    const out = new Uint8Array(clean.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.substr(i * 2, 2), 16);
    return out;
  }

  function base64(bytes) {
    let bin = "";
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(bin);
  }

  async function hmacSha256(key, data) {
    if (window.crypto && crypto.subtle) {
      const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
      return new Uint8Array(await crypto.subtle.sign("HMAC", k, data));
    }
    // WebCrypto exists only in secure contexts (https or loopback); a server reached over plain http on
    // another address still gets a working token from this small RFC 2104 / FIPS 180-4 implementation.
    return hmacFallback(key, data);
  }

  const K256 = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);

  function sha256(data) {
    const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    const padded = new Uint8Array((((data.length + 9) >> 6) + 1) << 6);
    padded.set(data);
    padded[data.length] = 0x80;
    const view = new DataView(padded.buffer);
    view.setUint32(padded.length - 8, Math.floor(data.length / 0x20000000));
    view.setUint32(padded.length - 4, (data.length << 3) >>> 0);
    const w = new Uint32Array(64);
    const rotr = (x, n) => (x >>> n) | (x << (32 - n));
    for (let off = 0; off < padded.length; off += 64) {
      for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + i * 4);
      for (let i = 16; i < 64; i++) {
        const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
        const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
      }
      let [a, b, c, d, e, f, g, hh] = h;
      for (let i = 0; i < 64; i++) {
        const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i]) >>> 0;
        const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
        hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
      }
      h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
    }
    const out = new Uint8Array(32);
    const outView = new DataView(out.buffer);
    h.forEach((v, i) => outView.setUint32(i * 4, v));
    return out;
  }

  function hmacFallback(key, data) {
    const k = key.length > 64 ? sha256(key) : key;
    const block = new Uint8Array(64);
    block.set(k);
    const inner = new Uint8Array(64 + data.length);
    const outer = new Uint8Array(64 + 32);
    for (let i = 0; i < 64; i++) {
      inner[i] = block[i] ^ 0x36;
      outer[i] = block[i] ^ 0x5c;
    }
    inner.set(data, 64);
    outer.set(sha256(inner), 64);
    return sha256(outer);
  }

  // The authsign envelope around a sign request, exactly as cfssl's client builds it.
  async function authsign(inner, hexKey) {
    const key = hexToBytes(hexKey);
    const request = new TextEncoder().encode(JSON.stringify(inner));
    const token = await hmacSha256(key, request);
    return call("authsign", {
      token: base64(token),
      request: base64(request),
      timestamp: Math.floor(Date.now() / 1000),
    });
  }

  // ---- rendering ------------------------------------------------------------------------------------

  function setBusy(form, busy) {
    for (const b of form.querySelectorAll("button")) b.disabled = busy;
    form.setAttribute("aria-busy", busy ? "true" : "false");
  }

  function showStatus(page, kind, text) {
    const box = $(page + "-status");
    box.replaceChildren();
    if (text) box.append(el("p", { class: kind, role: kind === "error" ? "alert" : null, text }));
  }

  function showError(page, err) {
    const code = err instanceof ApiError && err.code !== "" && err.code !== undefined ? `Error ${err.code}: ` : "Error: ";
    showStatus(page, "error", code + err.message);
    const box = $(page + "-status");
    box.lastChild.id = page + "-error";
    if (err.hint) box.append(el("p", { class: "warn", id: page + "-hint", text: err.hint }));
  }

  // Non-fatal messages in a success envelope (e.g. 5300 "This certificate lacks a hosts field").
  function showMessages(page, envelope) {
    const box = $(page + "-status");
    for (const m of envelope.messages || []) {
      box.append(el("p", { class: "warn", text: `Note ${m.code}: ${m.message}` }));
    }
  }

  function download(filename, data, type = "application/x-pem-file") {
    const url = URL.createObjectURL(new Blob([data], { type }));
    const a = el("a", { href: url, download: filename });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  async function copy(text, button) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (_) {
      // the async clipboard needs a secure context; fall back to a selection copy
      const area = el("textarea", { class: "offscreen", "aria-hidden": "true" });
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = label), 1200);
  }

  // A titled PEM (or other text) block with Copy and Download buttons; the <pre> gets id `id`.
  function textBlock(id, title, text, filename) {
    const copyBtn = el("button", { type: "button", class: "small", text: "Copy" });
    copyBtn.addEventListener("click", () => copy(text, copyBtn));
    const dlBtn = el("button", { type: "button", class: "small", text: "Download" });
    dlBtn.addEventListener("click", () => download(filename, text));
    return el(
      "section",
      { class: "block" },
      el("div", { class: "block-head" }, el("h3", { text: title }), el("span", { class: "buttons" }, copyBtn, dlBtn)),
      el("pre", { id, class: "pem", tabindex: "0", text }),
    );
  }

  // A download's file name from a certificate's common name: letters, digits, dot, dash and underscore only,
  // never starting with a dot, at most 64 characters ("certificate" when nothing is left).
  function fileStem(cn) {
    const stem = String(cn || "").replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._-]+/, "").slice(0, 64);
    return stem || "certificate";
  }

  const NAME_FIELDS = [
    ["common_name", "CN"], ["organization", "O"], ["organizational_unit", "OU"], ["locality", "L"],
    ["province", "ST"], ["country", "C"], ["street_address", "street"], ["postal_code", "postal code"],
    ["serial_number", "serialNumber"],
  ];

  function nameText(name) {
    const parts = [];
    for (const [key, short] of NAME_FIELDS) if (name && name[key]) parts.push(`${short}=${name[key]}`);
    return parts.join(", ") || "(empty)";
  }

  function valueNode(value) {
    if (value === null || value === undefined || value === "") return el("span", { class: "muted", text: "—" });
    if (Array.isArray(value)) {
      if (value.length === 0) return el("span", { class: "muted", text: "—" });
      if (value.every((v) => typeof v !== "object" || v === null)) {
        return el("ul", { class: "plain" }, ...value.map((v) => el("li", { text: String(v) })));
      }
      return el("ol", { class: "plain" }, ...value.map((v) => el("li", {}, valueNode(v))));
    }
    if (typeof value === "object") return kvTable(value);
    const text = String(value);
    if (text.length > 160) {
      return el("details", {}, el("summary", { text: `${text.slice(0, 48)}… (${text.length} characters)` }), el("code", { class: "wrap", text }));
    }
    return el("span", { class: "wrap", text });
  }

  function kvTable(obj, rows) {
    const table = el("table", { class: "kv" });
    const body = el("tbody");
    for (const [label, value] of rows || Object.entries(obj)) {
      body.append(el("tr", {}, el("th", { scope: "row", text: label }), el("td", {}, valueNode(value))));
    }
    table.append(body);
    return table;
  }

  // A certinfo result as a table: cfssl's certificate shape gets named rows, anything else (the Go
  // x509.CertificateRequest dump some servers return for CSRs) is shown as it comes.
  function certinfoTable(info) {
    if (!info || typeof info !== "object" || !("subject" in info)) return kvTable(info || {});
    const rows = [
      ["Subject", nameText(info.subject)],
      ["Issuer", nameText(info.issuer)],
      ["Serial number", info.serial_number],
      ["SANs", info.sans || []],
      ["Not before", info.not_before],
      ["Not after", info.not_after],
      ["Signature algorithm", info.sigalg],
      ["Authority key ID", info.authority_key_id],
      ["Subject key ID", info.subject_key_id],
    ];
    const known = new Set(["subject", "issuer", "serial_number", "sans", "not_before", "not_after", "sigalg", "authority_key_id", "subject_key_id", "pem"]);
    for (const [k, v] of Object.entries(info)) if (!known.has(k)) rows.push([k, v]);
    const table = kvTable(info, rows);
    table.classList.add("certinfo");
    return table;
  }

  async function describeInto(container, id, pem) {
    const holder = el("section", { class: "block", id }, el("h3", { text: "Details" }), el("p", { class: "muted", text: "Loading…" }));
    container.append(holder);
    try {
      const env = await call("certinfo", { certificate: pem });
      holder.lastChild.replaceWith(certinfoTable(env.result));
    } catch (err) {
      holder.lastChild.replaceWith(el("p", { class: "error", role: "alert", text: `Error ${err.code}: ${err.message}` }));
    }
  }

  // ---- forms ----------------------------------------------------------------------------------------

  function splitList(text) {
    return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
  }

  function mountSubjectForms() {
    const template = $("subject-template");
    for (const holder of document.querySelectorAll(".subject[data-prefix]")) {
      const prefix = holder.dataset.prefix;
      const frag = template.content.cloneNode(true);
      for (const node of frag.querySelectorAll("[id]")) node.id = node.id.replace(/^P-/, prefix + "-");
      for (const node of frag.querySelectorAll("label[for]")) node.htmlFor = node.htmlFor.replace(/^P-/, prefix + "-");
      holder.append(frag);
      const algo = $(prefix + "-algo");
      algo.addEventListener("change", () => fillSizes(prefix));
      fillSizes(prefix);
    }
  }

  function fillSizes(prefix) {
    const algo = $(prefix + "-algo").value;
    const size = $(prefix + "-size");
    const sizes = KEY_SIZES[algo] || [];
    size.replaceChildren(...sizes.map((s) => el("option", { value: s, text: s })));
    if (sizes.length === 0) size.append(el("option", { value: "", text: "(fixed)" }));
    size.disabled = sizes.length === 0;
  }

  // The subject, hosts and key choice of a mounted subject form.
  function subjectOf(prefix) {
    const v = (name) => $(prefix + "-" + name).value.trim();
    const subject = { CN: v("cn"), C: v("c"), ST: v("st"), L: v("l"), O: v("o"), OU: v("ou") };
    const hosts = splitList($(prefix + "-hosts").value);
    const algo = v("algo");
    const choice = algo === "ed25519" ? "ed25519" : `${algo}-${v("size")}`;
    return { subject, hosts, choice };
  }

  // A key and CSR made in this browser (csr.js); the key never leaves the page.
  async function browserKey(prefix) {
    const { subject, hosts, choice } = subjectOf(prefix);
    try {
      return { ...(await window.CfsslpyCSR.generate(choice, subject, hosts)), subject, hosts };
    } catch (err) {
      throw new ApiError("", err.message || String(err), 0);
    }
  }

  function bind(page, handler) {
    const form = $(page + "-form");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const result = $(page + "-result");
      result.replaceChildren();
      showStatus(page, "busy", "Working…");
      setBusy(form, true);
      try {
        await handler(result);
        if ($(page + "-status").firstChild && $(page + "-status").firstChild.className === "busy") showStatus(page, "", "");
      } catch (err) {
        showError(page, err);
      } finally {
        $(page + "-status").scrollIntoView({ block: "nearest" });
        setBusy(form, false);
      }
    });
  }

  function doneStatus(page, text, envelope) {
    showStatus(page, "ok", text);
    if (envelope) showMessages(page, envelope);
  }

  // ---- inspect: certificates, CSRs, chains and CRLs through the parse endpoint ----------------------------

  const TYPE_TITLES = { certificate: "Certificate", csr: "Certificate request", crl: "Certificate revocation list" };

  function objectRows(obj) {
    if (obj.type === "certificate") {
      return [
        ["Subject", obj.subject], ["Issuer", obj.issuer], ["Serial number", obj.serial_number], ["Serial (hex)", obj.serial_hex],
        ["SANs", obj.sans], ["Not before", obj.not_before], ["Not after", obj.not_after], ["Key", obj.key],
        ["Signature algorithm", obj.signature_algorithm], ["Authority key ID", obj.authority_key_id],
        ["Subject key ID", obj.subject_key_id], ["CA", yesNo(obj.is_ca)], ["Key usage", obj.key_usage],
        ["Extended key usage", obj.ext_key_usage], ["SHA-256 fingerprint", obj.sha256],
      ];
    }
    if (obj.type === "csr") {
      return [
        ["Subject", obj.subject], ["SANs", obj.sans], ["Key", obj.key], ["Signature algorithm", obj.signature_algorithm],
        ["Signature valid", yesNo(obj.signature_valid)], ["Key usage", obj.key_usage], ["Extended key usage", obj.ext_key_usage],
      ];
    }
    const entries = (obj.revoked || []).map((e) => `${e.serial_number} revoked ${e.revoked_at}${e.reason ? " (" + e.reason + ")" : ""}`);
    return [
      ["Issuer", obj.issuer], ["CRL number", obj.number], ["This update", obj.this_update], ["Next update", obj.next_update],
      ["Signature algorithm", obj.signature_algorithm], ["Authority key ID", obj.authority_key_id],
      ["Revoked certificates", String(obj.revoked_count)], ["Entries", entries],
    ];
  }

  function describeObjects(objects, idPrefix) {
    return objects.map((obj, i) => {
      const title = (TYPE_TITLES[obj.type] || obj.type) + (objects.length > 1 ? ` ${i + 1} of ${objects.length}` : "");
      const table = kvTable(obj, objectRows(obj));
      table.classList.add("parsed");
      return el("section", { class: "block", id: `${idPrefix}-${i}`, "data-type": obj.type },
        el("h3", { text: title + (obj.common_name ? ` — ${obj.common_name}` : "") }), table);
    });
  }

  async function loadInspectFile() {
    const input = $("inspect-file");
    const file = input.files && input.files[0];
    if (!file) return;
    const bytes = new Uint8Array(await file.arrayBuffer());
    const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
    $("inspect-pem").value = text.includes("-----BEGIN ") ? text : base64(bytes);
    showStatus("inspect", "", "");
  }

  bind("inspect", async (out) => {
    const env = await call("parse", { data: $("inspect-pem").value }, CONSOLE);
    const objects = env.result.objects || [];
    const kinds = objects.map((o) => TYPE_TITLES[o.type] || o.type);
    doneStatus("inspect", `Described: ${kinds.join(", ")}.`, env);
    out.append(el("section", { id: "inspect-details" }, ...describeObjects(objects, "inspect-object")));
  });

  // ---- new key and CSR, in the browser ---------------------------------------------------------------

  bind("newkey", async (out) => {
    const made = await browserKey("newkey");
    const stem = fileStem(made.subject.CN);
    doneStatus("newkey", "Key and CSR generated in this browser; nothing was sent to the server. Save the private key now.");
    out.append(
      textBlock("newkey-key", "Private key (PKCS#8)", made.privateKey, `${stem}.key.pem`),
      textBlock("newkey-csr", "Certificate request", made.csr, `${stem}.csr.pem`),
    );
  });

  // ---- request a certificate ---------------------------------------------------------------------------

  let profiles = null; // [{name, usages, expiry, auth}] from the server, or null when unknown

  function requestMode() {
    return $("request-mode-sign").checked ? "sign" : "newcert";
  }

  function updateRequestMode() {
    const sign = requestMode() === "sign";
    $("request-sign-fields").hidden = !sign;
    $("request-newcert-fields").hidden = sign;
  }

  function selectedProfile(selectId) {
    const name = $(selectId).value;
    return (profiles || []).find((p) => p.name === name) || null;
  }

  function updateProfileInfo() {
    const profile = selectedProfile("request-profile");
    const info = $("request-profile-info");
    info.replaceChildren();
    if (profile) info.append(el("p", { class: "hint", text: `Usages: ${profile.usages.join(", ") || "none"} · expiry ${profile.expiry}` + (profile.auth ? " · needs its auth key" : "") }));
    // the auth key field only for profiles with an auth key (always when the profiles are unknown)
    $("request-authkey-field").hidden = profiles !== null && !(profile && profile.auth);
  }

  function fillProfiles(list) {
    profiles = list;
    for (const id of ["request-profile", "ca-profile"]) {
      const select = $(id);
      select.replaceChildren(...list.map((p) => el("option", { value: p.name, text: (p.name || "default") + (p.auth ? " (auth key)" : "") })));
    }
    updateProfileInfo();
  }

  bind("request", async (out) => {
    const profile = $("request-profile").value;
    const label = $("request-label").value.trim();
    const chosen = selectedProfile("request-profile");
    const authKey = $("request-authkey-field").hidden ? "" : $("request-authkey").value.trim();
    if (chosen && chosen.auth && !authKey) throw new ApiError("", `the profile ${profile} needs its auth key`, 0);
    let made = null;
    let inner;
    if (requestMode() === "newcert") {
      made = await browserKey("request");
      inner = { certificate_request: made.csr, profile, label };
    } else {
      inner = { certificate_request: $("request-csr").value, profile, label };
      const hosts = splitList($("request-sign-hosts").value);
      if (hosts.length) inner.hosts = hosts; // absent keeps the CSR's SANs
    }
    const env = authKey ? await authsign(inner, authKey) : await call("sign", inner);
    const cert = env.result.certificate;
    let stem = fileStem(made && made.subject.CN);
    const parsed = await call("parse", { data: cert }, CONSOLE).catch(() => null);
    const object = parsed && parsed.result.objects[0];
    if (object && object.common_name) stem = fileStem(object.common_name);
    doneStatus("request", made ? "Certificate issued. The private key was made in this browser and is shown once: save it now." : "Certificate issued.", env);
    out.append(textBlock("request-certificate", "Certificate", cert, `${stem}.pem`));
    const details = describeInto(out, "request-details", cert); // placed under the certificate, filled later
    if (made) out.append(textBlock("request-key", "Private key (PKCS#8, made in this browser)", made.privateKey, `${stem}.key.pem`));
    if (made) out.append(textBlock("request-csr-out", "Certificate request", made.csr, `${stem}.csr.pem`));
    await details;
  });

  // ---- the CA and its CRL ------------------------------------------------------------------------------

  bind("ca", async (out) => {
    const body = {};
    if ($("ca-profile").value) body.profile = $("ca-profile").value;
    if ($("ca-label").value.trim()) body.label = $("ca-label").value.trim();
    const env = await call("info", body);
    const r = env.result;
    doneStatus("ca", "", env);
    const parsed = await call("parse", { data: r.certificate }, CONSOLE).catch(() => null);
    const cn = parsed ? parsed.result.objects[0].common_name : "ca";
    out.append(
      el("section", { class: "block", id: "ca-profile-info" }, el("h3", { text: "Profile" }),
        kvTable(r, [["Usages", r.usages || []], ["Expiry", r.expiry]])),
      textBlock("ca-certificate", "CA certificate", r.certificate, `${fileStem(cn)}.pem`),
    );
    await describeInto(out, "ca-details", r.certificate);
  });

  let caName = "ca";

  async function showCrlInfo() {
    const summary = $("crl-summary");
    try {
      const info = (await get("crlinfo")).result;
      summary.replaceChildren(kvTable(info, [
        ["Issuer", info.issuer],
        ["Last CRL number issued", info.last_number ?? "none yet"],
        ["Revoked, unexpired certificates", String(info.revoked_count)],
      ]));
    } catch (err) {
      summary.replaceChildren(el("p", { class: "error", text: `Error ${err.code}: ${err.message}` }));
    }
  }

  async function downloadCrl() {
    const button = $("crl-download");
    button.disabled = true;
    showStatus("crl", "busy", "Working…");
    try {
      const env = await get("crl", {}, API);
      const der = Uint8Array.from(atob(env.result), (c) => c.charCodeAt(0));
      const crl = (await call("parse", { data: env.result }, CONSOLE)).result.objects[0];
      const name = `${fileStem(caName)}.crl`;
      download(name, der, "application/pkix-crl");
      showStatus("crl", "ok", `Downloaded ${name}: CRL number ${crl.number}, next update ${crl.next_update}, ${crl.revoked_count} revoked.`);
      $("crl-result").replaceChildren(...describeObjects([crl], "crl-object"));
      await showCrlInfo();
    } catch (err) {
      showError("crl", err);
    } finally {
      button.disabled = false;
    }
  }

  // ---- bundle ---------------------------------------------------------------------------------------

  const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

  function pemBlocks(text) {
    return (text || "").match(PEM_BLOCK) || [];
  }

  function pemWrap(label, bytes) {
    const lines = base64(bytes).match(/.{1,64}/g) || [];
    return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
  }

  // A file chosen in the form goes into the textarea: PEM as it is, anything else as one DER certificate.
  async function loadBundleFile() {
    const input = $("bundle-file");
    const file = input.files && input.files[0];
    if (!file) return;
    const bytes = new Uint8Array(await file.arrayBuffer());
    const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
    $("bundle-pem").value = text.includes("-----BEGIN ") ? text : pemWrap("CERTIFICATE", bytes);
    showStatus("bundle", "", "");
  }

  const yesNo = (v) => (v ? "yes" : "no");

  function cn(name) {
    return (name && name.common_name) || nameText(name);
  }

  // The chain, leaf first and the root last, each described through certinfo when the server has it.
  async function chainList(pems, rootIndex) {
    const list = el("ol", { class: "chain", id: "bundle-chain-list" });
    const items = pems.map((pem, i) => {
      const role = i === 0 ? "leaf" : i === rootIndex ? "root" : "intermediate";
      const li = el("li", { "data-role": role }, el("span", { class: "role", text: role }), el("span", { class: "muted", text: " …" }));
      list.append(li);
      return li;
    });
    const canDescribe = document.body.dataset.endpoints === undefined || document.body.dataset.endpoints.split(" ").includes("certinfo");
    const work = pems.map(async (pem, i) => {
      const li = items[i];
      if (!canDescribe) {
        li.lastChild.replaceWith(el("span", { text: ` certificate ${i + 1}` }));
        return;
      }
      try {
        const info = (await call("certinfo", { certificate: pem })).result;
        li.lastChild.replaceWith(
          el("span", {}, " ", el("strong", { class: "subject", text: cn(info.subject) }),
            el("span", { class: "muted", text: ` issued by ${cn(info.issuer)}, expires ${info.not_after}` })),
        );
      } catch (err) {
        li.lastChild.replaceWith(el("span", { class: "error", text: ` Error ${err.code}: ${err.message}` }));
      }
    });
    return { list, done: Promise.all(work) };
  }

  bind("bundle", async (out) => {
    const body = { flavor: $("bundle-flavor").value };
    const pem = $("bundle-pem").value.trim();
    const domain = $("bundle-domain").value.trim();
    if (pem) body.certificate = pem;
    if (domain) body.domain = domain;
    if (!pem && !domain) throw new ApiError("", "paste or load a certificate, or give a domain", 0);
    const env = await call("bundle", body);
    const r = env.result || {};
    const status = r.status || {};
    doneStatus("bundle", `Bundled (status ${status.code ?? "?"}${status.rebundled ? ", rebundled" : ""}).`, env);
    // the bundler's own findings (expiry, hash and key ubiquity, untrusted platforms)
    const box = $("bundle-status");
    (status.messages || []).forEach((m, i) => box.append(el("p", { class: "warn", id: `bundle-message-${i}`, text: m })));

    const chain = pemBlocks(r.bundle);
    const root = pemBlocks(r.root);
    const all = [...chain, ...root.filter((p) => !chain.includes(p))];
    const { list, done } = await chainList(all, root.length ? all.indexOf(root[0]) : -1);
    out.append(el("section", { class: "block", id: "bundle-chain-block" }, el("h3", { text: `Chain (${all.length} certificate${all.length === 1 ? "" : "s"})` }), list));
    out.append(
      el("section", { class: "block", id: "bundle-summary" }, el("h3", { text: "Leaf and status" }),
        kvTable(r, [
          ["Subject", r.subject],
          ["Issuer", r.issuer],
          ["Hostnames", r.hostnames || []],
          ["Key", r.key_type],
          ["Signature", r.signature],
          ["Leaf expires", r.leaf_expires],
          ["Chain expires", r.expires],
          ["OCSP", r.ocsp || []],
          ["OCSP support", yesNo(r.ocsp_support)],
          ["CRL support", yesNo(r.crl_support)],
          ["Status code", status.code],
          ["Rebundled", yesNo(status.rebundled)],
          ["Expiring SKIs", status.expiring_SKIs || []],
          ["Untrusted root stores", status.untrusted_root_stores || []],
        ])),
    );
    // downloads are named after the leaf's common name
    const leaf = chain.length ? await call("parse", { data: chain[0] }, CONSOLE).catch(() => null) : null;
    const stem = fileStem(leaf ? leaf.result.objects[0].common_name : "bundle");
    if (r.bundle) out.append(textBlock("bundle-chain", "Bundle (leaf and intermediates)", r.bundle + "\n", `${stem}.bundle.pem`));
    if (r.root) out.append(textBlock("bundle-root", "Root", r.root + "\n", `${stem}.root.pem`));
    if (r.bundle && r.root) out.append(textBlock("bundle-full", "Full chain (bundle and root)", r.bundle + "\n" + r.root + "\n", `${stem}.fullchain.pem`));
    await done;
  });

  // ---- certificates: the certdb list, a detail view, revoke, OCSP status ----------------------------------

  let listPage = 1;
  let listPages = 1;
  let capabilities = { endpoints: [], certdb: false };
  const has = (name) => capabilities.endpoints.includes(name);

  function badge(row) {
    if (row.status === "revoked") return el("span", { class: "badge revoked", text: "revoked" + (row.reason_name ? ` (${row.reason_name})` : "") });
    if (row.expired) return el("span", { class: "badge expired", text: "expired" });
    if (row.expiring_soon) return el("span", { class: "badge expiring", text: "expiring soon" });
    return el("span", { class: "badge " + (row.status === "good" ? "good" : "unknown"), text: row.status });
  }

  function sansText(sans) {
    if (!sans || !sans.length) return "—";
    return sans.slice(0, 2).join(", ") + (sans.length > 2 ? ` +${sans.length - 2}` : "");
  }

  function shortSerial(serial) {
    return serial.length > 20 ? serial.slice(0, 8) + "…" + serial.slice(-8) : serial;
  }

  async function loadList(page) {
    const [sort, order] = $("certs-sort").value.split(":");
    showStatus("certificates", "busy", "Loading…");
    try {
      const env = await get("certificates", {
        q: $("certs-q").value.trim(), status: $("certs-status").value, sort, order, page, page_size: $("certs-size").value,
      });
      const r = env.result;
      listPage = r.page;
      listPages = r.pages;
      const rows = r.certificates.map((row) => {
        const link = el("a", { href: "#certificates", class: "cert-link", "data-serial": row.serial_number, "data-aki": row.authority_key_identifier, text: row.common_name || "(no CN)" });
        link.addEventListener("click", (event) => {
          event.preventDefault();
          showDetail(row.serial_number, row.authority_key_identifier);
        });
        const classes = ["cert-row", row.status === "revoked" ? "is-revoked" : "", row.expiring_soon ? "is-expiring" : "", row.expired ? "is-expired" : ""];
        return el("tr", { class: classes.filter(Boolean).join(" "), "data-serial": row.serial_number },
          el("td", {}, link), el("td", { text: sansText(row.sans) }), el("td", {}, el("code", { title: row.serial_number, text: shortSerial(row.serial_number) })),
          el("td", { text: row.profile || row.ca_label || "—" }), el("td", { text: row.expiry || "—" }), el("td", {}, badge(row)));
      });
      $("certs-rows").replaceChildren(...rows);
      if (!rows.length) $("certs-rows").append(el("tr", {}, el("td", { colspan: "6", class: "muted", text: "No certificates match." })));
      $("certs-pageinfo").textContent = `Page ${r.page} of ${r.pages} (${r.total} certificate${r.total === 1 ? "" : "s"})`;
      $("certs-prev").disabled = r.page <= 1;
      $("certs-next").disabled = r.page >= r.pages;
      $("certs-rows").dataset.loaded = String(Date.now());
      showStatus("certificates", "", "");
    } catch (err) {
      showError("certificates", err);
    }
  }

  const REASONS = [
    ["unspecified", "unspecified"], ["keyCompromise", "key compromise"], ["cACompromise", "CA compromise"],
    ["affiliationChanged", "affiliation changed"], ["superseded", "superseded"], ["cessationOfOperation", "cessation of operation"],
    ["certificateHold", "certificate hold"], ["privilegeWithdrawn", "privilege withdrawn"], ["aACompromise", "AA compromise"],
  ];

  function revokeForm(detail) {
    const select = el("select", { id: "revoke-reason" }, ...REASONS.map(([v, t]) => el("option", { value: v, text: t })));
    const button = el("button", { type: "button", id: "revoke-button", class: "danger", text: "Revoke…" });
    const confirm = el("button", { type: "button", id: "revoke-confirm", class: "danger", hidden: true, text: "Confirm: revoke this certificate" });
    const status = el("div", { class: "status", id: "revoke-status", role: "status", "aria-live": "polite" });
    button.addEventListener("click", () => {
      confirm.hidden = false;
      button.hidden = true;
    });
    confirm.addEventListener("click", async () => {
      confirm.disabled = true;
      try {
        await call("revoke", { serial: detail.serial_number, authority_key_id: detail.authority_key_identifier, reason: select.value });
        await showDetail(detail.serial_number, detail.authority_key_identifier, "Revoked.");
        loadList(listPage);
      } catch (err) {
        showError("revoke", err);
        confirm.disabled = false;
      }
    });
    return el("section", { class: "block", id: "revoke-block" }, el("h3", { text: "Revoke" }),
      el("label", { for: "revoke-reason", text: "Reason" }), select,
      el("p", { class: "hint", text: "cfssl's revoke endpoint: the certificate is marked revoked in the database; the next CRL and OCSP responses say so." }),
      el("div", { class: "actions" }, button, confirm), status);
  }

  async function ocspBlock(serial, aki) {
    const holder = el("section", { class: "block", id: "cert-ocsp" }, el("h3", { text: "OCSP status" }));
    try {
      const r = (await get("ocspstatus", { serial, aki })).result;
      const stored = r.stored_response;
      holder.append(kvTable(r, [
        ["Status", r.status + (r.reason_name ? ` (${r.reason_name})` : "")],
        ["Revoked at", r.revoked_at],
        ["Stored OCSP response", stored ? `${stored.cert_status}, this update ${stored.this_update}, next update ${stored.next_update || "—"}` : "none (ocsprefresh has not signed one)"],
      ]));
      holder.dataset.status = r.status;
    } catch (err) {
      holder.append(el("p", { class: "error", text: `Error ${err.code}: ${err.message}` }));
    }
    return holder;
  }

  async function showDetail(serial, aki, note) {
    const box = $("cert-detail");
    box.hidden = false;
    box.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
    try {
      const d = (await get("certificate", { serial, aki })).result;
      const c = d.certificate || {};
      const stem = fileStem(d.common_name || c.common_name);
      const head = el("div", { class: "block-head" }, el("h3", { text: d.common_name || "(no CN)" }), badge(d));
      const rows = [
        ["Subject", c.subject], ["Issuer", c.issuer], ["SANs", c.sans || d.sans], ["Serial number", d.serial_number],
        ["Authority key ID", d.authority_key_identifier], ["Profile", d.profile], ["CA label", d.ca_label], ["Metadata", d.metadata],
        ["Not before", d.not_before], ["Not after", d.expiry], ["Issued at", d.issued_at], ["Status", d.status],
        ["Revocation reason", d.reason_name], ["Revoked at", d.revoked_at], ["Key", c.key], ["Key usage", c.key_usage],
        ["Extended key usage", c.ext_key_usage],
      ];
      const parts = [el("section", { class: "block", id: "cert-detail-info", "data-status": d.status }, head, kvTable(d, rows)),
        textBlock("cert-detail-pem", "Certificate", d.pem, `${stem}.pem`)];
      parts.push(await ocspBlock(d.serial_number, d.authority_key_identifier));
      const revocable = d.status === "good" || (d.status === "revoked" && d.reason === 6);
      if (has("revoke") && revocable) parts.push(revokeForm(d));
      else if (!has("revoke")) parts.push(el("p", { class: "hint", id: "revoke-unavailable", text: "Revoking is not available on this server (no certificate database, or -datadir on a non-loopback address, or -disable revoke)." }));
      box.replaceChildren(...parts);
      if (note) $("revoke-status") ? showStatus("revoke", "ok", note) : box.prepend(el("p", { class: "ok", id: "cert-detail-note", text: note }));
      box.scrollIntoView({ block: "start" });
    } catch (err) {
      box.replaceChildren(el("p", { class: "error", id: "cert-detail-error", role: "alert", text: `Error ${err.code}: ${err.message}` }));
    }
  }

  function bindConsole() {
    let timer = null;
    $("certs-form").addEventListener("submit", (event) => {
      event.preventDefault();
      loadList(1);
    });
    $("certs-q").addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => loadList(1), 300);
    });
    for (const id of ["certs-status", "certs-sort", "certs-size"]) $(id).addEventListener("change", () => loadList(1));
    $("certs-prev").addEventListener("click", () => listPage > 1 && loadList(listPage - 1));
    $("certs-next").addEventListener("click", () => listPage < listPages && loadList(listPage + 1));
    $("crl-download").addEventListener("click", downloadCrl);
  }

  // ---- navigation -----------------------------------------------------------------------------------

  // A page is shown when the server has what it uses (newkey runs in the browser: it needs WebCrypto only).
  const NEEDS = {
    certificates: () => capabilities.certdb,
    request: () => has("sign") || has("authsign"),
    newkey: () => window.CfsslpyCSR.available(),
    inspect: () => has("parse"),
    ca: () => has("info"),
    bundle: () => has("bundle"),
  };
  let available = new Set(["inspect"]);
  const DEFAULT_ORDER = ["certificates", "inspect", "request", "newkey", "ca", "bundle"];

  function route() {
    let page = location.hash.replace(/^#/, "");
    if (!available.has(page)) page = DEFAULT_ORDER.find((p) => available.has(p)) || "inspect";
    for (const p of PAGES) {
      $("page-" + p).hidden = p !== page;
      const tab = $("tab-" + p);
      if (p === page) tab.setAttribute("aria-current", "page");
      else tab.removeAttribute("aria-current");
    }
    if (page === "certificates" && !$("certs-rows").dataset.loaded) loadList(1);
    if (page === "ca" && has("crl") && !$("crl-summary").firstChild) showCrlInfo();
  }

  // What this server offers (the console's capabilities endpoint), then the profiles for the pickers.
  async function discover() {
    try {
      capabilities = (await get("capabilities")).result;
      if (capabilities.ca && capabilities.ca.common_name) caName = capabilities.ca.common_name;
      available = new Set(PAGES.filter((p) => NEEDS[p]()));
      for (const p of PAGES) $("tab-" + p).parentElement.hidden = !available.has(p);
      document.body.dataset.endpoints = capabilities.endpoints.join(" ");
      $("crl-block").hidden = !has("crl");
      $("bundle-untrusted").hidden = !(capabilities.bundler && capabilities.signer && !capabilities.bundler_trusts_ca);
      if (has("profiles") && (has("sign") || has("authsign") || has("info"))) fillProfiles((await get("profiles")).result.profiles);
      await keyChoices();
    } catch (err) {
      showError("inspect", err);
    } finally {
      document.body.dataset.ready = "true";
      route();
    }
  }

  // Key types this browser can generate: Ed25519 only where WebCrypto has it; none without WebCrypto.
  async function keyChoices() {
    const crypto = window.CfsslpyCSR.available();
    $("request-keygen-note").hidden = crypto;
    if (!crypto) {
      $("request-mode-sign").checked = true;
      $("request-mode-newcert").disabled = true;
      updateRequestMode();
      return;
    }
    if (await window.CfsslpyCSR.supportsEd25519()) {
      for (const option of document.querySelectorAll('option[value="ed25519"]')) {
        option.hidden = false;
        option.disabled = false;
      }
    }
  }

  mountSubjectForms();
  bindConsole();
  $("bundle-file").addEventListener("change", () => loadBundleFile().catch((err) => showError("bundle", err)));
  $("inspect-file").addEventListener("change", () => loadInspectFile().catch((err) => showError("inspect", err)));
  $("request-profile").addEventListener("change", updateProfileInfo);
  for (const radio of document.querySelectorAll('input[name="request-mode"]')) radio.addEventListener("change", updateRequestMode);
  updateRequestMode();
  window.addEventListener("hashchange", route);
  route();
  discover();
})();
