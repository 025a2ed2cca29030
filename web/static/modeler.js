// The BPMN modeler page: edit with bpmn-js, lint on every change (markers and overlays on the
// elements the findings name), deploy after the full check. Without bpmn-js the XML is edited as text.
(function () {
  var configEl = document.getElementById("modeler-config");
  if (!configEl) return;
  var config = JSON.parse(configEl.textContent);
  var S = config.strings;
  var canvasEl = document.getElementById("modeler-canvas");
  var xmlPane = document.getElementById("xml-pane");
  var xmlText = document.getElementById("xml-text");
  var statusEl = document.getElementById("modeler-status");
  var listEl = document.getElementById("findings-list");
  var countEl = document.getElementById("findings-count");
  var emptyEl = document.getElementById("findings-empty");
  var hasModeler = config.modeler && typeof BpmnJS !== "undefined";
  var modeler = hasModeler ? new BpmnJS({ container: canvasEl }) : null;
  var dirty = false;
  var marked = [];
  var request = 0;

  xmlText.value = config.xml;
  if (!hasModeler) {
    canvasEl.hidden = true;
    xmlPane.hidden = false;
    xmlText.addEventListener("input", function () { dirty = true; lintSoon(); });
  }

  function status(text, kind) {
    statusEl.textContent = text || "";
    statusEl.className = "dz-status" + (kind ? " dz-status-" + kind : "");
  }

  function currentXml() {
    if (!hasModeler || !xmlPane.hidden) return Promise.resolve(xmlText.value);
    return modeler.saveXML({ format: true }).then(function (result) { return result.xml; });
  }

  function importXml(xml) {
    if (!hasModeler) { xmlText.value = xml; return Promise.resolve(); }
    return modeler.importXML(xml).then(function () {
      modeler.get("canvas").zoom("fit-viewport");
      status("");
    }).catch(function (err) {
      status(S.importFailed + " " + (err && err.message ? err.message : err), "error");
      throw err;
    });
  }

  function clearMarks() {
    if (!hasModeler) return;
    var canvas = modeler.get("canvas");
    modeler.get("overlays").remove({ type: "dz-lint" });
    marked.forEach(function (m) { canvas.removeMarker(m[0], m[1]); });
    marked = [];
  }

  function pick(finding) {
    if (!hasModeler) return;
    var element = modeler.get("elementRegistry").get(finding.element_id);
    if (!element) return;
    modeler.get("selection").select(element);
    if (element.waypoints === undefined) modeler.get("canvas").scrollToElement(element);
  }

  function show(findings) {
    clearMarks();
    var errors = findings.filter(function (f) { return f.severity === "error"; }).length;
    countEl.textContent = findings.length ? "(" + findings.length + ")" : "";
    emptyEl.textContent = findings.length ? "" : S.noFindings;
    Designer.renderFindings(listEl, findings, S, hasModeler ? pick : null);
    if (hasModeler) {
      var registry = modeler.get("elementRegistry");
      var canvas = modeler.get("canvas");
      var overlays = modeler.get("overlays");
      var byElement = {};
      findings.forEach(function (f) {
        if (!f.element_id || f.file !== config.file || !registry.get(f.element_id)) return;
        (byElement[f.element_id] = byElement[f.element_id] || []).push(f);
      });
      Object.keys(byElement).forEach(function (id) {
        var items = byElement[id];
        var severe = items.some(function (f) { return f.severity === "error"; }) ? "error" : "warning";
        canvas.addMarker(id, "dz-lint-" + severe);
        marked.push([id, "dz-lint-" + severe]);
        var badge = Designer.el("div", "dz-lint-badge dz-lint-badge-" + severe, String(items.length));
        badge.title = items.map(function (f) { return "[" + f.rule + "] " + f.message; }).join("\n");
        overlays.add(id, "dz-lint", { position: { top: -10, right: 10 }, html: badge });
      });
    }
    return errors;
  }

  function lint() {
    var mine = ++request;
    status(S.validating);
    return currentXml().then(function (xml) {
      return Designer.postJson(config.validateUrl, { xml: xml });
    }).then(function (result) {
      if (mine !== request) return;
      var errors = show(result.data.findings || []);
      if (result.data.message) status(result.data.message, "error");
      else status(errors ? S.invalid.replace("{count}", errors) : S.valid, errors ? "error" : "ok");
    }).catch(function () {
      if (mine === request) status(S.failed, "error");
    });
  }
  var lintSoon = Designer.debounce(lint, 1200);

  function deploy() {
    if (!window.confirm(S.confirmDeploy)) return;
    request++;
    status(S.deploying);
    currentXml().then(function (xml) {
      return Designer.postJson(config.deployUrl, { xml: xml });
    }).then(function (result) {
      if (result.data.ok) {
        dirty = false;
        window.location.assign(result.data.redirect);
        return;
      }
      show(result.data.findings || []);
      status(result.data.message || S.refused, "error");
    }).catch(function () { status(S.failed, "error"); });
  }

  function toggleXml() {
    var button = document.getElementById("btn-xml");
    if (!hasModeler) return;
    if (xmlPane.hidden) {
      currentXml().then(function (xml) {
        xmlText.value = xml;
        xmlPane.hidden = false;
        canvasEl.hidden = true;
        button.setAttribute("aria-pressed", "true");
      });
    } else {
      canvasEl.hidden = false;  // shown before the import: fitting a hidden canvas gives no size
      importXml(xmlText.value).then(function () {
        xmlPane.hidden = true;
        button.setAttribute("aria-pressed", "false");
        lint();
      }, function () { canvasEl.hidden = true; });
    }
  }

  document.getElementById("btn-validate").addEventListener("click", lint);
  document.getElementById("btn-deploy").addEventListener("click", deploy);
  document.getElementById("btn-xml").addEventListener("click", toggleXml);
  var apply = document.getElementById("btn-apply-xml");
  if (apply) apply.addEventListener("click", toggleXml);
  document.getElementById("open-file").addEventListener("change", function (event) {
    var file = event.target.files[0];
    if (!file) return;
    file.text().then(function (text) {
      dirty = true;
      return importXml(text);
    }).then(lint);
  });
  document.getElementById("btn-download").addEventListener("click", function () {
    currentXml().then(function (xml) {
      var link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob([xml], { type: "application/xml" }));
      link.download = config.file;
      document.body.appendChild(link);
      link.click();
      setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 0);
    });
  });
  window.addEventListener("beforeunload", function (event) {
    if (dirty) { event.preventDefault(); event.returnValue = S.unsaved; }
  });

  if (hasModeler) {
    modeler.on("commandStack.changed", function () { dirty = true; lintSoon(); });
    importXml(config.xml).then(lint, function () {});
  } else {
    lint();
  }
})();
