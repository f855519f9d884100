import HTTPTypes
import Hummingbird
import NIOCore

/// The web console at `/_galley/`: one static page and its script over the host's JSON endpoints
/// (no build step, nothing fetched from elsewhere). Everything a function wrote (log lines, store
/// values, results) is shown as text, never as markup, and the page may not be framed.
enum Console {
    static var page: Response { response(html, type: "text/html; charset=utf-8") }
    static var script: Response { response(javascript, type: "text/javascript; charset=utf-8") }

    private static func response(_ text: String, type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.contentSecurityPolicy] = "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
        headers[.xFrameOptions] = "DENY"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static let html = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>Galley</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <style>
        body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
        header { background: #1d2330; color: #fff; padding: 10px 20px; display: flex; gap: 24px; align-items: baseline; }
        header h1 { font-size: 18px; margin: 0; }
        header a { color: #c9d4ff; text-decoration: none; }
        header a.current { color: #fff; font-weight: 600; }
        main { padding: 16px 20px; max-width: 1100px; }
        table { border-collapse: collapse; width: 100%; background: #fff; margin: 8px 0 16px; }
        th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #e3e6ec; vertical-align: top; }
        th { background: #eef0f4; font-weight: 600; }
        pre { background: #fff; border: 1px solid #e3e6ec; padding: 8px; white-space: pre-wrap; word-break: break-all; max-height: 420px; overflow: auto; }
        textarea { width: 100%; min-height: 90px; font: 13px ui-monospace, monospace; }
        .error { color: #b00020; }
        .ok { color: #0a7d32; }
        .muted { color: #6b7280; }
        button { margin-right: 6px; }
        section { margin-bottom: 20px; }
        </style>
        </head>
        <body>
        <header>
          <h1>Galley</h1>
          <nav><a href="#/functions" id="nav-functions">Functions</a> · <a href="#/store" id="nav-store">Store</a> · <a href="#/queue" id="nav-queue">Queue</a></nav>
          <span id="build" class="muted"></span>
        </header>
        <main id="view"></main>
        <script src="/_galley/console.js"></script>
        </body>
        </html>
        """

    static let javascript = #"""
        "use strict";
        const view = document.getElementById("view");
        let tail = null;

        function el(tag, attributes, ...children) {
          const node = document.createElement(tag);
          for (const [name, value] of Object.entries(attributes || {})) {
            if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
            else node.setAttribute(name, value);
          }
          for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
          return node;
        }
        function table(headings, rows, id) {
          return el("table", id ? { id } : {}, el("tr", {}, ...headings.map((h) => el("th", {}, h))), ...rows);
        }
        async function read(path) {
          const response = await fetch(path);
          const body = await response.json();
          if (!response.ok) throw new Error(body.message || response.status);
          return body;
        }
        async function act(method, path) {
          const response = await fetch(path, { method, headers: { "X-Galley-Console": "1" } });
          const body = await response.json();
          if (!response.ok) throw new Error(body.message || response.status);
          return body;
        }
        function failure(error) { return el("p", { class: "error", id: "error" }, String(error.message || error)); }
        function time(ms) { return new Date(ms).toLocaleString(); }
        const enc = encodeURIComponent;

        async function functionsView() {
          const document_ = await read("/_galley/functions");
          document.getElementById("build").textContent = document_.build ? "build " + document_.build : "";
          const rows = Object.entries(document_.functions).sort().map(([name, f]) =>
            el("tr", { "data-function": name },
              el("td", {}, el("a", { href: "#/function/" + enc(name) }, name)),
              el("td", {}, f.description), el("td", {}, f.handler),
              el("td", {}, f.running + " busy / " + f.idle + " warm"),
              el("td", {}, f.routes.join(", "))));
          return [el("h2", {}, "Functions"), table(["name", "description", "handler", "environments", "routes"], rows, "functions")];
        }

        async function functionView(name) {
          const all = await read("/_galley/functions");
          const f = all.functions[name];
          if (!f) throw new Error("no function named " + name);
          const recent = await read("/_galley/invocations?function=" + enc(name));
          const configuration = table(["setting", "value"], [
            ["handler", f.handler], ["description", f.description], ["timeout", f.timeout + " s"],
            ["memory", f.memory + " MB"], ["concurrency", f.concurrency],
            ["environments", f.running + " busy / " + f.idle + " warm"], ["routes", f.routes.join(", ")],
            ["store namespaces", [name, ...f.store].join(", ")],
            ...f.environment.map((key) => ["env " + key, "****"]),
          ].map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, v))), "configuration");
          const invocations = table(["time", "request id", "status", "duration", "memory"],
            recent.invocations.map((i) => el("tr", { "data-request": i.requestID },
              el("td", {}, time(i.time)),
              el("td", {}, el("a", { href: "#/invocation/" + enc(name) + "/" + enc(i.requestID) }, i.requestID)),
              el("td", { class: i.status === "success" ? "ok" : "error" }, i.status + (i.errorType ? " (" + i.errorType + ")" : "")),
              el("td", {}, i.durationMs.toFixed(2) + " ms" + (i.initDurationMs != null ? " + init " + i.initDurationMs.toFixed(2) + " ms" : "")),
              el("td", {}, i.maxMemoryUsedMB + " / " + i.memorySizeMB + " MB"))), "invocations");
          const payload = el("textarea", { id: "payload" }, "{}");
          const result = el("pre", { id: "result" });
          const report = el("pre", { id: "report" });
          const invoke = el("button", { id: "invoke", onclick: async () => {
            result.textContent = "…"; report.textContent = "";
            const response = await fetch("/2015-03-31/functions/" + enc(name) + "/invocations",
              { method: "POST", headers: { "X-Amz-Log-Type": "Tail" }, body: payload.value });
            const text = await response.text();
            const failed = response.headers.get("X-Amz-Function-Error");
            result.className = response.ok && !failed ? "ok" : "error";
            result.textContent = (response.ok ? "" : response.status + " ") + (failed ? "function error: " : "") + text;
            const log = response.headers.get("X-Amz-Log-Result");
            if (log) report.textContent = new TextDecoder().decode(Uint8Array.from(atob(log), (c) => c.charCodeAt(0)));
          } }, "Invoke");
          const live = el("pre", { id: "tail" });
          const follow = el("button", { id: "follow", onclick: () => {
            if (tail) { tail.close(); tail = null; follow.textContent = "Follow the log"; return; }
            tail = new EventSource("/_galley/logs?follow=true&function=" + enc(name) + "&since=" + Date.now());
            tail.onmessage = (message) => { live.append(JSON.parse(message.data).text + "\n"); live.scrollTop = live.scrollHeight; };
            follow.textContent = "Stop following";
          } }, "Follow the log");
          return [el("h2", {}, name), configuration,
            el("section", {}, el("h3", {}, "Invoke"), payload, el("p", {}, invoke), el("h4", {}, "Result"), result, el("h4", {}, "Log"), report),
            el("section", {}, el("h3", {}, "Recent invocations"), recent.kept ? invocations : el("p", { class: "muted" }, "server.metrics is off: nothing is kept")),
            el("section", {}, el("h3", {}, "Live log"), follow, live)];
        }

        async function invocationView(name, requestID) {
          const response = await fetch("/_galley/logs?function=" + enc(name) + "&requestId=" + enc(requestID));
          const text = await response.text();
          const lines = text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => JSON.parse(e.slice(6)));
          return [el("h2", {}, el("a", { href: "#/function/" + enc(name) }, name), " · ", requestID),
            el("pre", { id: "log" }, lines.map((l) => l.text).join("\n"))];
        }

        async function storeView(namespace, prefix, after) {
          const { namespaces } = await read("/_galley/store");
          namespace = namespace || namespaces[0];
          const select = el("select", { id: "namespace", onchange: () => { location.hash = "#/store/" + enc(select.value); } },
            ...namespaces.map((n) => { const o = el("option", { value: n }, n); if (n === namespace) o.selected = true; return o; }));
          const prefixInput = el("input", { id: "prefix", placeholder: "key prefix", value: prefix || "" });
          const search = el("button", { id: "search", onclick: () => show(storeView(namespace, prefixInput.value)) }, "List");
          const page = await read("/_galley/store/" + enc(namespace) + "?limit=50&prefix=" + enc(prefix || "") + (after ? "&after=" + enc(after) : ""));
          const rows = page.entries.map((entry) => {
            const value = "value" in entry ? JSON.stringify(entry.value) : "base64:" + entry.valueBase64;
            return el("tr", { "data-key": entry.key },
              el("td", {}, entry.key), el("td", {}, entry.version),
              el("td", {}, el("code", {}, value.length > 300 ? value.slice(0, 300) + "…" : value)),
              el("td", {}, entry.expiresAt ? time(entry.expiresAt) : ""),
              el("td", {}, el("button", { class: "delete", onclick: async () => {
                if (!confirm("Delete " + entry.key + "?")) return;
                try { await act("DELETE", "/_galley/store/" + enc(namespace) + "?key=" + enc(entry.key)); show(storeView(namespace, prefix, after)); }
                catch (error) { view.prepend(failure(error)); }
              } }, "Delete")));
          });
          const more = page.cursor ? el("button", { id: "more", onclick: () => show(storeView(namespace, prefix, page.cursor)) }, "Next page") : "";
          return [el("h2", {}, "Store"), el("p", {}, select, " ", prefixInput, " ", search),
            table(["key", "version", "value", "expires", ""], rows, "keys"), more];
        }

        async function queueView() {
          const status = await read("/_galley/queue");
          const names = Object.keys((await read("/_galley/functions")).functions).sort();
          const rows = Object.entries(status.functions || {}).map(([name, s]) => el("tr", { "data-function": name },
            el("td", {}, name), el("td", {}, s.waiting), el("td", {}, s.running), el("td", {}, s.delivered),
            el("td", {}, s.retries), el("td", {}, s.deadLetters)));
          const letters = [];
          for (const name of new Set([...names, ...Object.keys(status.functions || {})])) {
            const { deadLetters } = await read("/_galley/dead-letters/" + enc(name));
            for (const letter of deadLetters) letters.push(el("tr", { "data-letter": letter.id },
              el("td", {}, name), el("td", {}, letter.requestId), el("td", {}, time(letter.failedAt)),
              el("td", {}, letter.condition + (letter.errorType ? " (" + letter.errorType + ")" : "")),
              el("td", {}, letter.attempts),
              el("td", {}, el("code", {}, JSON.stringify(letter.record.requestPayload))),
              el("td", {},
                el("button", { class: "replay", onclick: () => letterAction(name, letter.id, "replay") }, "Replay"),
                el("button", { class: "purge", onclick: () => letterAction(name, letter.id, "purge") }, "Purge"))));
          }
          return [el("h2", {}, "Queue"), el("p", {}, status.events + " events waiting or running, " + status.bytes + " bytes"),
            table(["function", "waiting", "running", "delivered", "retries", "dead letters"], rows, "queue"),
            el("h3", {}, "Dead letters"),
            letters.length ? table(["function", "request id", "failed", "condition", "attempts", "payload", ""], letters, "dead-letters")
              : el("p", { class: "muted", id: "no-dead-letters" }, "No dead letters.")];
        }
        async function letterAction(name, id, action) {
          try { await act("POST", "/_galley/dead-letters/" + enc(name) + "/" + action + "?id=" + id); show(queueView()); }
          catch (error) { view.prepend(failure(error)); }
        }

        async function show(content) {
          try { view.replaceChildren(...await content); }
          catch (error) { view.replaceChildren(failure(error)); }
        }
        function navigate() {
          if (tail) { tail.close(); tail = null; }
          const [, page, ...rest] = location.hash.split("/").map(decodeURIComponent);
          for (const link of document.querySelectorAll("nav a")) link.classList.toggle("current", link.id === "nav-" + (page === "function" || page === "invocation" ? "functions" : page || "functions"));
          if (page === "function") show(functionView(rest[0]));
          else if (page === "invocation") show(invocationView(rest[0], rest[1]));
          else if (page === "store") show(storeView(rest[0]));
          else if (page === "queue") show(queueView());
          else show(functionsView());
        }
        window.addEventListener("hashchange", navigate);
        navigate();
        """#
}

extension HTTPField.Name {
    static let contentSecurityPolicy = Self("Content-Security-Policy")!
    static let xFrameOptions = Self("X-Frame-Options")!
}
