// cfsslpy web UI: plain DOM code talking to the cfssl JSON API of the server that served this page.
// Everything is local (no CDN) and there is no inline script, so the page runs under a strict CSP.
"use strict";

(function () {
  const API = "api/v1/cfssl/"; // relative: keeps working behind a reverse proxy that adds a path prefix
  const PAGES = ["inspect", "newkey", "request", "ca", "bundle"];
  const KEY_SIZES = { ecdsa: ["256", "384", "521"], rsa: ["2048", "3072", "4096"], ed25519: [] };

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
  async function call(endpoint, body) {
    let response;
    try {
      response = await fetch(API + endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
      });
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

  function download(filename, text) {
    const url = URL.createObjectURL(new Blob([text], { type: "application/x-pem-file" }));
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

  // The cfssl CSR JSON (reference §3.6) from a mounted subject form.
  function csrRequest(prefix) {
    const v = (name) => $(prefix + "-" + name).value.trim();
    const req = {};
    if (v("cn")) req.CN = v("cn");
    const hosts = splitList($(prefix + "-hosts").value);
    if (hosts.length) req.hosts = hosts;
    const name = {};
    for (const [field, key] of [["c", "C"], ["st", "ST"], ["l", "L"], ["o", "O"], ["ou", "OU"]]) if (v(field)) name[key] = v(field);
    if (Object.keys(name).length) req.names = [name];
    const algo = v("algo");
    req.key = algo === "ed25519" ? { algo } : { algo, size: parseInt(v("size"), 10) };
    return req;
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

  bind("inspect", async (out) => {
    const pem = $("inspect-pem").value;
    let env;
    try {
      env = await call("certinfo", { certificate: pem });
    } catch (err) {
      // cfssl's certinfo endpoint describes certificates only; say so next to its error for a CSR
      // (only the PEM label is looked at: nothing is parsed here)
      if (/-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(pem)) {
        err.hint = "This is a CSR: the server's certinfo endpoint describes certificates only (as cfssl's does). " +
          "Describe a CSR with the command line: cfsslpy certinfo -csr csr.pem";
      }
      throw err;
    }
    doneStatus("inspect", "Described.", env);
    out.append(el("section", { class: "block", id: "inspect-details" }, el("h3", { text: "Details" }), certinfoTable(env.result)));
  });

  bind("newkey", async (out) => {
    const env = await call("newkey", csrRequest("newkey"));
    const r = env.result;
    doneStatus("newkey", "Key and CSR generated. The private key is shown once: save it now.", env);
    out.append(
      textBlock("newkey-key", "Private key", r.private_key, "key.pem"),
      textBlock("newkey-csr", "Certificate request", r.certificate_request, "csr.pem"),
    );
    const sums = r.sums && r.sums.certificate_request;
    if (sums) out.append(el("section", { class: "block" }, el("h3", { text: "CSR digests" }), kvTable(sums)));
  });

  function requestMode() {
    return $("request-mode-sign").checked ? "sign" : "newcert";
  }

  function updateRequestMode() {
    const sign = requestMode() === "sign";
    $("request-sign-fields").hidden = !sign;
    $("request-newcert-fields").hidden = sign;
  }

  bind("request", async (out) => {
    const profile = $("request-profile").value.trim();
    const label = $("request-label").value.trim();
    const authKey = $("request-authkey").value.trim();
    let env;
    let privateKey = null;
    let csr = null;
    if (requestMode() === "newcert") {
      const req = csrRequest("request");
      if (authKey) {
        // newcert has no authenticated form: generate the key and CSR, then authsign the CSR
        // (what `cfssl gencert -remote` does for a profile with auth_remote).
        const keyEnv = await call("newkey", req);
        privateKey = keyEnv.result.private_key;
        csr = keyEnv.result.certificate_request;
        const inner = { certificate_request: csr, profile, label };
        if (req.hosts) inner.hosts = req.hosts;
        env = await authsign(inner, authKey);
      } else {
        env = await call("newcert", { request: req, profile, label });
        privateKey = env.result.private_key;
        csr = env.result.certificate_request;
      }
    } else {
      const inner = { certificate_request: $("request-csr").value, profile, label };
      const hosts = splitList($("request-sign-hosts").value);
      if (hosts.length) inner.hosts = hosts; // absent keeps the CSR's SANs
      env = authKey ? await authsign(inner, authKey) : await call("sign", inner);
    }
    const cert = env.result.certificate;
    doneStatus("request", privateKey ? "Certificate issued. The private key is shown once: save it now." : "Certificate issued.", env);
    out.append(textBlock("request-certificate", "Certificate", cert, "cert.pem"));
    const details = describeInto(out, "request-details", cert); // placed under the certificate, filled later
    if (privateKey) out.append(textBlock("request-key", "Private key", privateKey, "key.pem"));
    if (csr) out.append(textBlock("request-csr-out", "Certificate request", csr, "csr.pem"));
    await details;
  });

  bind("ca", async (out) => {
    const body = {};
    if ($("ca-profile").value.trim()) body.profile = $("ca-profile").value.trim();
    if ($("ca-label").value.trim()) body.label = $("ca-label").value.trim();
    const env = await call("info", body);
    const r = env.result;
    doneStatus("ca", "", env);
    out.append(
      el("section", { class: "block", id: "ca-profile-info" }, el("h3", { text: "Profile" }),
        kvTable(r, [["Usages", r.usages || []], ["Expiry", r.expiry]])),
      textBlock("ca-certificate", "CA certificate", r.certificate, "ca.pem"),
    );
    await describeInto(out, "ca-details", r.certificate);
  });

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
    if (r.bundle) out.append(textBlock("bundle-chain", "Bundle (leaf and intermediates)", r.bundle + "\n", "bundle.pem"));
    if (r.root) out.append(textBlock("bundle-root", "Root", r.root + "\n", "root.pem"));
    if (r.bundle && r.root) out.append(textBlock("bundle-full", "Full chain (bundle and root)", r.bundle + "\n" + r.root + "\n", "fullchain.pem"));
    await done;
  });

  // ---- navigation -----------------------------------------------------------------------------------

  // A page is shown when the server registered at least one endpoint it uses.
  const NEEDS = { inspect: ["certinfo"], newkey: ["newkey"], request: ["newcert", "sign", "authsign"], ca: ["info"], bundle: ["bundle"] };
  let available = new Set(PAGES.filter((p) => p !== "bundle"));

  function route() {
    let page = location.hash.replace(/^#/, "");
    if (!available.has(page)) page = PAGES.find((p) => available.has(p)) || "inspect";
    for (const p of PAGES) {
      $("page-" + p).hidden = p !== page;
      const tab = $("tab-" + p);
      if (p === page) tab.setAttribute("aria-current", "page");
      else tab.removeAttribute("aria-current");
    }
  }

  // Which API endpoints this server registered (bundle only appears when the server has one).
  async function discover() {
    try {
      const response = await fetch("ui/endpoints", { cache: "no-store" });
      if (!response.ok) return;
      const endpoints = new Set((await response.json()).endpoints || []);
      available = new Set(PAGES.filter((p) => NEEDS[p].some((name) => endpoints.has(name))));
      for (const p of PAGES) $("tab-" + p).parentElement.hidden = !available.has(p);
      document.body.dataset.endpoints = [...endpoints].sort().join(" ");
    } catch (_) {
      /* an older server without the list: keep the default pages */
    } finally {
      document.body.dataset.ready = "true";
      route();
    }
  }

  mountSubjectForms();
  $("bundle-file").addEventListener("change", () => loadBundleFile().catch((err) => showError("bundle", err)));
  for (const radio of document.querySelectorAll('input[name="request-mode"]')) radio.addEventListener("change", updateRequestMode);
  updateRequestMode();
  window.addEventListener("hashchange", route);
  route();
  discover();
})();
