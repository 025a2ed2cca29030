// The case's BPMN diagram (bpmn-js NavigatedViewer) with completed and open steps highlighted.
(function () {
  var canvasEl = document.getElementById("canvas");
  var stateEl = document.getElementById("diagram-state");
  if (!canvasEl || !stateEl || typeof BpmnJS === "undefined") return;
  var state = JSON.parse(stateEl.textContent);
  var viewer = new BpmnJS({ container: canvasEl });
  function fail() {
    canvasEl.textContent = canvasEl.dataset.error;
  }
  fetch(canvasEl.dataset.xmlUrl, { credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) throw new Error(response.status);
      return response.text();
    })
    .then(function (xml) { return viewer.importXML(xml); })
    .then(function () {
      var canvas = viewer.get("canvas");
      var registry = viewer.get("elementRegistry");
      canvas.zoom("fit-viewport");
      state.completed.forEach(function (id) {
        if (registry.get(id)) canvas.addMarker(id, "dz-completed");
      });
      state.active.forEach(function (id) {
        if (registry.get(id)) canvas.addMarker(id, "dz-active");
      });
    })
    .catch(fail);
})();
