// Two versions of a process side by side: markers on added, changed and removed elements.
(function () {
  var stateEl = document.getElementById("diff-state");
  if (!stateEl || typeof BpmnJS === "undefined") return;
  var state = JSON.parse(stateEl.textContent);
  ["newer", "older"].forEach(function (which) {
    var container = document.getElementById("diagram-" + which);
    if (!container) return;
    var viewer = new BpmnJS({ container: container });
    viewer.importXML(state[which].xml).then(function () {
      var canvas = viewer.get("canvas");
      var registry = viewer.get("elementRegistry");
      canvas.zoom("fit-viewport");
      Object.keys(state[which].markers).forEach(function (kind) {
        state[which].markers[kind].forEach(function (id) {
          if (registry.get(id)) canvas.addMarker(id, "dz-" + kind);
        });
      });
    }).catch(function () { container.textContent = container.dataset.error; });
  });
})();
