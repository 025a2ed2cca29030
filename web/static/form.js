// Repeatable rows (arrays in a form): add a row from the <template>, remove a row.
// Inputs are named f.<field>.<row>[.<column>]; a new row takes the next free row number.
(function () {
  function nextIndex(tbody) {
    var max = -1;
    tbody.querySelectorAll("[name]").forEach(function (input) {
      var match = input.name.match(/\.(\d+)(\.[A-Za-z0-9_]+)?$/);
      if (match) max = Math.max(max, parseInt(match[1], 10));
    });
    return max + 1;
  }
  function renumber(row, index) {
    row.querySelectorAll("[name], [id]").forEach(function (el) {
      if (el.name) el.name = el.name.replace(/\.-1(\.|$)/, "." + index + "$1");
      if (el.id) el.id = el.id.replace(/--1(-|$)/, "-" + index + "$1");
    });
  }
  document.querySelectorAll(".rows-field").forEach(function (box) {
    var tbody = box.querySelector("tbody");
    var template = box.querySelector("template");
    var max = parseInt(box.dataset.max || "200", 10);
    box.querySelector(".add-row").addEventListener("click", function () {
      if (tbody.rows.length >= max) return;
      var row = template.content.firstElementChild.cloneNode(true);
      renumber(row, nextIndex(tbody));
      tbody.appendChild(row);
      var first = row.querySelector("input, select, textarea");
      if (first) first.focus();
    });
    box.addEventListener("click", function (event) {
      if (!event.target.classList.contains("remove-row")) return;
      var row = event.target.closest("tr");
      if (tbody.rows.length > 1) {
        row.remove();
      } else {
        row.querySelectorAll("input, select, textarea").forEach(function (el) {
          if (el.type === "checkbox") el.checked = false; else el.value = "";
        });
      }
    });
  });
  var errors = document.getElementById("form-errors");
  if (errors) {
    var first = document.querySelector('[aria-invalid="true"]');
    (first || errors).scrollIntoView({ block: "center" });
  }
})();
