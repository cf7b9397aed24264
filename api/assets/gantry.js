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
        log.append(decoder.decode(value, { stream: true }));
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
    let p;
    try {
      const resp = await fetch("/pipelines/" + id + ".json", { headers: { Accept: "application/json" } });
      if (!resp.ok) throw new Error(resp.status);
      p = await resp.json();
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
        log.dataset.offset = "0";
        const full = job.querySelector("a.full");
        if (full) full.href = jobPath(j.name) + "/log?attempt=" + j.attempt;
      }
      job.dataset.state = j.state;
      setState(job.querySelector("summary .state"), j.state);
      job.querySelector(".attempt").textContent = "attempt " + j.attempt;
      job.querySelector(".duration").textContent = duration(j.duration_seconds);
      job.querySelector(".desc").textContent = j.description || "";
      job.querySelector(".class").textContent = j.error_class ? j.error_class + " failure" : "";
      if (j.state === "running") follow(job);
    }
    if (!terminal.has(p.state)) later(3000);
  }

  for (const job of main.querySelectorAll("[data-job]")) {
    if (job.dataset.state === "running") follow(job);
  }
  if (!terminal.has(main.dataset.state)) later(3000);
})();
