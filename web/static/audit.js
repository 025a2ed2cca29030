// Auditor pages: step through a case's events on the diagram, and the report's print button.
(function () {
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });

  var stateEl = document.getElementById("steps-state");
  var range = document.getElementById("step-range");
  if (!stateEl || !range) return;
  var state = JSON.parse(stateEl.textContent);
  var steps = state.steps;
  var current = state.current;
  var prev = document.getElementById("step-prev");
  var next = document.getElementById("step-next");
  var count = document.getElementById("step-count");
  var panels = document.querySelectorAll(".step-panel");
  var canvasEl = document.getElementById("step-canvas");
  var viewer = null;
  var marked = [];

  function mark() {
    if (!viewer) return;
    var canvas = viewer.get("canvas");
    var registry = viewer.get("elementRegistry");
    marked.forEach(function (m) { canvas.removeMarker(m[0], m[1]); });
    marked = [];
    var step = steps[current - 1];
    step.completed.forEach(function (id) {
      if (registry.get(id)) { canvas.addMarker(id, "dz-completed"); marked.push([id, "dz-completed"]); }
    });
    step.active.forEach(function (id) {
      if (registry.get(id)) { canvas.addMarker(id, "dz-active"); marked.push([id, "dz-active"]); }
    });
  }

  function link(el, n) {
    var hide = n < 1 || n > steps.length;
    el.hidden = hide;
    el.setAttribute("aria-disabled", hide ? "true" : "false");
    el.dataset.step = n;
    var url = new URL(el.href, window.location.href);
    url.searchParams.set("step", n);
    el.href = url.pathname + url.search;
  }

  function show(n) {
    current = Math.min(Math.max(n, 1), steps.length);
    range.value = current;
    panels.forEach(function (panel) { panel.hidden = Number(panel.dataset.step) !== current; });
    link(prev, current - 1);
    link(next, current + 1);
    count.textContent = count.dataset.template.replace("__N__", current);
    var url = new URL(window.location.href);
    url.searchParams.set("step", current);
    window.history.replaceState(null, "", url.pathname + url.search);
    mark();
  }

  range.addEventListener("input", function () { show(Number(range.value)); });
  [prev, next].forEach(function (el) {
    el.addEventListener("click", function (event) {
      event.preventDefault();
      show(Number(el.dataset.step));
    });
  });
  document.addEventListener("keydown", function (event) {
    if (/INPUT|TEXTAREA|SELECT|BUTTON/.test((event.target && event.target.tagName) || "")) return;
    if (event.key === "ArrowLeft") show(current - 1);
    if (event.key === "ArrowRight") show(current + 1);
  });

  if (!canvasEl || typeof BpmnJS === "undefined") return;
  viewer = new BpmnJS({ container: canvasEl });
  fetch(canvasEl.dataset.xmlUrl, { credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) throw new Error(response.status);
      return response.text();
    })
    .then(function (xml) { return viewer.importXML(xml); })
    .then(function () {
      viewer.get("canvas").zoom("fit-viewport");
      mark();
    })
    .catch(function () { viewer = null; canvasEl.textContent = canvasEl.dataset.error; });
})();
