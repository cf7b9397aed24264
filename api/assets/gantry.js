// gantry's pipeline page: follows the logs of running jobs and keeps the states on the page
// current, without reloading it. Plain browser JavaScript, no build step. Log text only ever
// enters the page as text nodes, never as markup.
"use strict";
(function () {
  const main = document.querySelector("main[data-pipeline]");
  if (!main) return;
  const id = main.dataset.pipeline;
  const terminal = new Set(["success", "failed", "canceled", "skipped"]);
  const following = new Set(); // "job attempt" pairs whose log is being streamed
  // A browser opens about six connections to one server; a few followed logs leave room for
  // the state requests (a job past the limit is followed when another one ends).
  const maxFollowing = 4;

  // The log renderer of ansi.go and loglines.go, for followed output: the very same rules, so a
  // line reads the same followed as on a reloaded page (TestFollowedLogRendersAsThePage). Text
  // enters the page only as text nodes; classes come only from the names below.
  function sgrClass(st) {
    const c = [];
    if (st.fg) c.push("fg" + (st.fg - 1));
    if (st.bg) c.push("bg" + (st.bg - 1));
    if (st.bold) c.push("bold");
    if (st.faint) c.push("faint");
    if (st.italic) c.push("italic");
    if (st.underline) c.push("underline");
    return c.join(" ");
  }

  function cube16(r, g, b) {
    const hi = Math.max(r, g, b);
    const c = (r >= 3 ? 1 : 0) | (g >= 3 ? 2 : 0) | (b >= 3 ? 4 : 0);
    if (c === 0 && hi >= 2) return 8;
    return hi === 5 ? c + 8 : c;
  }

  function palette16(n) {
    if (n < 16) return n;
    if (n < 232) return cube16(Math.floor((n - 16) / 36), Math.floor((n - 16) / 6) % 6, (n - 16) % 6);
    const grey = n - 232;
    return grey < 6 ? 0 : grey < 12 ? 8 : grey < 18 ? 7 : 15;
  }

  // extendedColor of ansi.go: [colour or 0, codes used].
  function extendedColor(rest) {
    if (rest.length >= 2 && rest[0] === 5) return [rest[1] > 255 ? 0 : 1 + palette16(rest[1]), 2];
    if (rest.length >= 4 && rest[0] === 2) {
      if (rest[1] > 255 || rest[2] > 255 || rest[3] > 255) return [0, 4];
      const six = (v) => Math.floor((v * 6) / 256);
      return [1 + cube16(six(rest[1]), six(rest[2]), six(rest[3])), 4];
    }
    if (rest.length >= 1 && (rest[0] === 5 || rest[0] === 2)) return [0, rest.length];
    return [0, 0];
  }

  function applySGR(st, params) {
    const codes = [];
    let cur = 0;
    for (let i = 0; i <= params.length; i++) {
      const ch = params[i];
      if (i === params.length || ch === ";" || ch === ":") {
        if (codes.length < 32) codes.push(cur);
        cur = 0;
        continue;
      }
      if (ch < "0" || ch > "9") return;
      cur = Math.min(cur * 10 + (ch.charCodeAt(0) - 48), 65536);
    }
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c === 0) Object.assign(st, { fg: 0, bg: 0, bold: false, faint: false, italic: false, underline: false });
      else if (c === 1) st.bold = true;
      else if (c === 2) st.faint = true;
      else if (c === 3) st.italic = true;
      else if (c === 4) st.underline = true;
      else if (c === 22) st.bold = st.faint = false;
      else if (c === 23) st.italic = false;
      else if (c === 24) st.underline = false;
      else if (c >= 30 && c <= 37) st.fg = c - 30 + 1;
      else if (c >= 90 && c <= 97) st.fg = c - 90 + 9;
      else if (c === 39) st.fg = 0;
      else if (c >= 40 && c <= 47) st.bg = c - 40 + 1;
      else if (c >= 100 && c <= 107) st.bg = c - 100 + 9;
      else if (c === 49) st.bg = 0;
      else if (c === 38 || c === 48) {
        const [col, used] = extendedColor(codes.slice(i + 1));
        i += used;
        if (col && c === 38) st.fg = col;
        else if (col) st.bg = col;
      }
    }
  }

  function skipString(line, j) {
    for (; j < line.length; j++) {
      const c = line.charCodeAt(j);
      if (c === 0x07 || c === 0x9c) return j + 1;
      if (c === 0x1b && line[j + 1] === "\\") return j + 2;
    }
    return j;
  }

  function csi(line, j, st) {
    const start = j;
    while (j < line.length && line.charCodeAt(j) >= 0x30 && line.charCodeAt(j) <= 0x3f) j++;
    const params = line.slice(start, j), inter = j;
    while (j < line.length && line.charCodeAt(j) >= 0x20 && line.charCodeAt(j) <= 0x2f) j++;
    const c = line.charCodeAt(j);
    if (j >= line.length || c < 0x40 || c > 0x7e) return j;
    if (line[j] === "m" && j === inter) applySGR(st, params);
    return j + 1;
  }

  function escape(line, j, st) {
    if (j >= line.length) return j;
    const c = line.charCodeAt(j);
    if (line[j] === "[") return csi(line, j + 1, st);
    if ("]PX^_".includes(line[j])) return skipString(line, j + 1);
    if (c >= 0x20 && c <= 0x2f) {
      while (j < line.length && line.charCodeAt(j) >= 0x20 && line.charCodeAt(j) <= 0x2f) j++;
      if (j < line.length && line.charCodeAt(j) >= 0x30 && line.charCodeAt(j) <= 0x7e) j++;
      return j;
    }
    return c >= 0x30 && c <= 0x7e ? j + 1 : j;
  }

  // renderLine of ansi.go: one line (without its newline) as [class, text] segments, st the
  // style carried from line to line.
  function renderLine(line, st) {
    const segs = [];
    let cr = false;
    for (let i = 0; i < line.length; ) {
      const c = line.charCodeAt(i);
      if (c === 0x1b) { i = escape(line, i + 1, st); continue; }
      if (c === 0x9b) { i = csi(line, i + 1, st); continue; }
      if (c === 0x90 || c === 0x98 || (c >= 0x9d && c <= 0x9f)) { i = skipString(line, i + 1); continue; }
      if (c === 0x0d) cr = true;
      else if (c === 0x09 || (c >= 0x20 && c < 0x7f) || c >= 0xa0) {
        if (cr) { segs.length = 0; cr = false; }
        const cls = sgrClass(st), last = segs[segs.length - 1];
        if (last && last[0] === cls) last[1] += line[i];
        else segs.push([cls, line[i]]);
      }
      i++;
    }
    return segs;
  }

  // lineElement is one line as logLines of loglines.go writes it.
  function lineElement(name, n, segs) {
    const line = document.createElement("span");
    line.className = "line";
    line.id = name + "-L" + n;
    const a = document.createElement("a");
    a.className = "ln";
    a.setAttribute("href", "#" + line.id);
    a.dataset.n = String(n);
    line.append(a);
    for (const [cls, text] of segs) {
      if (!cls) { line.append(text); continue; }
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = text;
      line.append(span);
    }
    line.append("\n");
    return line;
  }

  // What a followed log has read past its last whole line, per log element.
  const logStates = new WeakMap();

  // appendLog adds followed output to a job's log. A last line without its newline is shown,
  // and drawn again whole when its newline comes.
  function appendLog(name, log, chunk) {
    let s = logStates.get(log);
    if (!s) {
      const last = log.querySelector(".line:last-child a.ln");
      s = { st: { fg: 0, bg: 0 }, pending: "", n: last ? Number(last.dataset.n) + 1 : 1, partial: null };
      logStates.set(log, s);
    }
    const lines = (s.pending + chunk).split("\n");
    s.pending = lines.pop();
    if (s.partial) s.partial.remove();
    s.partial = null;
    for (const line of lines) log.append(lineElement(name, s.n++, renderLine(line, s.st)));
    if (s.pending) {
      s.partial = lineElement(name, s.n, renderLine(s.pending, Object.assign({}, s.st)));
      log.append(s.partial);
    }
  }

  // showTarget opens the job a link points into (a line, or the job itself, as commit statuses
  // link) and brings it into view: a finished job's log is folded.
  function showTarget() {
    let id = "";
    try {
      id = decodeURIComponent(location.hash.slice(1));
    } catch (e) {
      return;
    }
    const el = id && document.getElementById(id);
    if (!el) return;
    const job = el.closest("details.job");
    if (job) job.open = true;
    el.scrollIntoView({ block: "center" });
  }

  // How long the running jobs on the page had run (sec, by the server's clock) at a moment
  // (at, by the browser's), per duration element: the browser's clock, which may be off, only
  // measures the time since.
  const loaded = Date.now();
  const elapsedFrom = new WeakMap();
  for (const el of main.querySelectorAll(".duration[data-elapsed]")) {
    elapsedFrom.set(el, { sec: Number(el.dataset.elapsed), at: loaded });
  }

  function tick() {
    for (const el of main.querySelectorAll(".duration[data-elapsed]")) {
      const e = elapsedFrom.get(el);
      if (e) el.textContent = duration(e.sec + (Date.now() - e.at) / 1000);
    }
  }

  function timeElement(cls, iso) {
    const t = document.createElement("time");
    const utc = new Date(iso).toISOString(); // clockText and isoText of pageview.go
    t.className = cls;
    t.dateTime = utc.replace(/\.\d+Z$/, "Z");
    t.textContent = utc.slice(11, 19);
    return t;
  }

  // showTimes writes a job's start, end and duration as pipeline.html does; serverNow is the
  // server's time when it answered, which a running job's elapsed time is counted from.
  function showTimes(job, j, serverNow) {
    const times = job.querySelector(".times"), dur = job.querySelector(".duration");
    times.textContent = "";
    if (j.started_at) {
      times.append(timeElement("started", j.started_at), "–");
      if (j.finished_at) times.append(timeElement("finished", j.finished_at));
    }
    if (j.state === "running" && j.started_at) {
      const sec = Math.max((serverNow - Date.parse(j.started_at)) / 1000, 0.1);
      elapsedFrom.set(dur, { sec: sec, at: Date.now() });
      dur.dataset.elapsed = String(sec);
      tick();
      return;
    }
    elapsedFrom.delete(dur);
    delete dur.dataset.elapsed;
    dur.textContent = duration(j.duration_seconds);
  }

  function jobPath(name) {
    return "/pipelines/" + id + "/jobs/" + encodeURIComponent(name);
  }

  // durationText of view.go, which the server renders with.
  function duration(sec) {
    if (!sec || sec <= 0) return "";
    if (sec < 60) return sec.toFixed(1) + "s";
    const s = Math.floor(sec);
    const pad = (n) => String(n).padStart(2, "0");
    if (s < 3600) return Math.floor(s / 60) + "m" + pad(s % 60) + "s";
    return Math.floor(s / 3600) + "h" + pad(Math.floor((s % 3600) / 60)) + "m";
  }

  // elem(tag, class, text) makes an element holding text as a text node: report fields come from
  // the project's own test output.
  function elem(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text) e.textContent = text;
    return e;
  }

  // The failing cases of a job that ended while the page was open, as pipeline.html lists
  // them, above the log.
  function showReport(job, r) {
    if (!r || job.querySelector(".report")) return;
    const div = elem("div", "report");
    const counts = [r.passed + " passed"];
    if (r.failed) counts.push(r.failed + " failed");
    if (r.errored) counts.push(r.errored + " errors");
    if (r.skipped) counts.push(r.skipped + " skipped");
    div.append(elem("p", "counts", r.tests + " test cases: " + counts.join(", ")));
    const ul = elem("ul", "cases");
    for (const c of r.cases || []) {
      if (c.status !== "failed" && c.status !== "error") continue;
      const d = elem("details"), s = elem("summary");
      s.append(elem("code", "", (c.classname ? c.classname + "::" : "") + c.name), " ", elem("span", "state failed", c.status));
      if (c.message) s.append(" ", elem("span", "message", c.message));
      d.append(s);
      if (c.output) d.append(elem("pre", "output", c.output));
      const li = elem("li", "case " + c.status);
      li.append(d);
      ul.append(li);
    }
    if (ul.children.length) div.append(ul);
    if (r.omitted) div.append(elem("p", "omitted", r.omitted + " more cases in the report file"));
    job.querySelector("pre.log").before(div);
  }

  function setState(el, state) {
    el.textContent = state;
    el.className = "state " + state;
  }

  async function follow(job) {
    const name = job.dataset.job, attempt = job.dataset.attempt;
    const key = name + " " + attempt;
    if (following.has(key) || following.size >= maxFollowing) return;
    following.add(key);
    job.open = true;
    const log = job.querySelector("pre.log");
    const start = Number(log.dataset.offset || "0");
    const url = jobPath(name) + "/log?follow=1&attempt=" + attempt + "&offset=" + start;
    try {
      const resp = await fetch(url, { headers: { Accept: "text/plain" } });
      if (!resp.ok || !resp.body) throw new Error(resp.status);
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let received = 0;
      for (;;) {
        const { value, done } = await reader.read();
        if (done || job.dataset.attempt !== attempt) break; // over, or a retry replaced it
        const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
        appendLog(name, log, decoder.decode(value, { stream: true }));
        if (atBottom) log.scrollTop = log.scrollHeight;
        // Where to go on from if the stream breaks. (Off by a few bytes only when the server
        // also had to say that output was dropped under the cap.)
        received += value.length;
        log.dataset.offset = String(start + received);
      }
    } catch (e) {
      // The stream broke (server restart, network): the refresh follows again.
    } finally {
      following.delete(key);
    }
    later(250);
  }

  // The states are read again soon after a followed log ends (its job is over, so others may
  // start) and every few seconds while the pipeline is not over.
  let timer = 0;
  function later(ms) {
    clearTimeout(timer);
    timer = setTimeout(refresh, ms);
  }

  async function refresh() {
    let p, serverNow = Date.now();
    try {
      const resp = await fetch("/pipelines/" + id + ".json", { headers: { Accept: "application/json" } });
      if (!resp.ok) throw new Error(resp.status);
      p = await resp.json();
      serverNow = Date.parse(resp.headers.get("Date")) || serverNow;
    } catch (e) {
      later(10000);
      return;
    }
    main.dataset.state = p.state;
    const badge = document.querySelector("h1 .state");
    if (badge) setState(badge, p.state);
    for (const j of p.jobs) {
      const job = main.querySelector('[data-job="' + CSS.escape(j.name) + '"]');
      if (!job) continue;
      if (job.dataset.attempt !== String(j.attempt)) {
        // A new attempt: its log starts empty.
        job.dataset.attempt = String(j.attempt);
        const log = job.querySelector("pre.log");
        log.textContent = "";
        logStates.delete(log);
        log.dataset.offset = "0";
        const full = job.querySelector("a.full");
        if (full) full.href = jobPath(j.name) + "/log?attempt=" + j.attempt;
      }
      job.dataset.state = j.state;
      setState(job.querySelector("summary .state"), j.state);
      job.querySelector(".attempt").textContent = "attempt " + j.attempt;
      showTimes(job, j, serverNow);
      job.querySelector(".desc").textContent = j.description || "";
      job.querySelector(".class").textContent = j.error_class ? j.error_class + " failure" : "";
      // coverageText of view.go: JavaScript writes 81.25 and 90 as Go's 'f', -1 does.
      job.querySelector(".coverage").textContent = j.coverage != null ? "coverage " + j.coverage + "%" : "";
      showReport(job, j.report);
      if (j.state === "running") follow(job);
    }
    if (!terminal.has(p.state)) later(3000);
  }

  showTarget();
  window.addEventListener("hashchange", showTarget);
  setInterval(tick, 1000);
  for (const job of main.querySelectorAll("[data-job]")) {
    if (job.dataset.state === "running") follow(job);
  }
  if (!terminal.has(main.dataset.state)) later(3000);
})();

// gantry's list of pipelines: while one of them may still change, the list is read again every
// few seconds and its rows replaced, so states and stages stay current without a reload, which
// would also lose a filter being typed. The rows come from this server's own page, parsed
// inertly (DOMParser runs no script) and already escaped by it.
(function () {
  const table = document.querySelector("table.pipelines[data-live]");
  if (!table) return;
  async function refresh() {
    let live = true;
    try {
      const resp = await fetch(location.href, { headers: { Accept: "text/html" } });
      if (!resp.ok) throw new Error(resp.status);
      const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
      const fresh = doc.querySelector("table.pipelines");
      if (fresh) table.tBodies[0].replaceWith(document.adoptNode(fresh.tBodies[0]));
      live = !!(fresh && fresh.hasAttribute("data-live"));
    } catch (e) {
      // The server is away for a moment: try again later.
    }
    if (live) setTimeout(refresh, 5000);
  }
  setTimeout(refresh, 5000);
})();
