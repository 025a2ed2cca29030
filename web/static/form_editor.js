// The form editor: the schema as text, checked and previewed as you type; values typed into the
// preview can be checked against the schema; deploy saves the form after the full check.
(function () {
  var configEl = document.getElementById("form-config");
  if (!configEl) return;
  var config = JSON.parse(configEl.textContent);
  var S = config.strings;
  var text = document.getElementById("schema-text");
  var problemsEl = document.getElementById("schema-problems");
  var findingsEl = document.getElementById("form-findings");
  var preview = document.getElementById("preview");
  var previewForm = document.getElementById("preview-form");
  var statusEl = document.getElementById("form-status");
  var dirty = false;
  var request = 0;

  function status(message, kind) {
    statusEl.textContent = message || "";
    statusEl.className = "dz-status" + (kind ? " dz-status-" + kind : "");
  }

  function goTo(line, column) {
    var lines = text.value.split("\n");
    var offset = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
    offset += Math.max(0, (column || 1) - 1);
    text.focus();
    text.setSelectionRange(offset, offset + 1);
    var lineHeight = text.scrollHeight / Math.max(lines.length, 1);
    text.scrollTop = Math.max(0, (line - 5) * lineHeight);
  }

  function showProblems(problems) {
    problemsEl.textContent = "";
    problems.forEach(function (p) {
      var item = Designer.el("li");
      if (p.line) {
        var where = Designer.el("button", "link", p.line + ":" + p.column);
        where.type = "button";
        where.addEventListener("click", function () { goTo(p.line, p.column); });
        item.appendChild(where);
        item.appendChild(document.createTextNode(" "));
      } else if (p.path) {
        item.appendChild(Designer.el("code", "", p.path));
      }
      item.appendChild(document.createTextNode(p.message));
      problemsEl.appendChild(item);
    });
  }

  function values() {
    var pairs = [];
    new FormData(previewForm).forEach(function (value, name) {
      if (typeof value === "string") pairs.push([name, value]);
    });
    return pairs;
  }

  function check(withValues) {
    var mine = ++request;
    status(S.checking);
    var body = { text: text.value };
    if (withValues) body.values = values();
    Designer.postJson(config.previewUrl, body).then(function (result) {
      if (mine !== request) return;
      var data = result.data;
      showProblems(data.problems || []);
      if (data.ok) preview.innerHTML = data.html;  // rendered by the server's templates (escaped)
      status(data.ok ? S.valid : S.invalid, data.ok ? "ok" : "error");
    }).catch(function () {
      if (mine === request) status(S.failed, "error");
    });
  }
  var checkSoon = Designer.debounce(function () { check(false); }, 500);

  text.addEventListener("input", function () { dirty = true; checkSoon(); });
  text.addEventListener("keydown", function (event) {
    if (event.key !== "Tab" || event.shiftKey) return;
    event.preventDefault();
    var start = text.selectionStart;
    text.setRangeText("  ", start, text.selectionEnd, "end");
    dirty = true;
    checkSoon();
  });
  document.getElementById("btn-check-values").addEventListener("click", function () { check(true); });

  // Repeatable rows in the preview (the preview is replaced on every check, so listen on the container).
  preview.addEventListener("click", function (event) {
    var box = event.target.closest(".rows-field");
    if (!box) return;
    var tbody = box.querySelector("tbody");
    if (event.target.classList.contains("add-row")) {
      var index = 0;
      tbody.querySelectorAll("[name]").forEach(function (el) {
        var match = el.name.match(/\.(\d+)(\.[A-Za-z0-9_]+)?$/);
        if (match) index = Math.max(index, parseInt(match[1], 10) + 1);
      });
      var row = box.querySelector("template").content.firstElementChild.cloneNode(true);
      row.querySelectorAll("[name]").forEach(function (el) {
        el.name = el.name.replace(/\.-1(\.|$)/, "." + index + "$1");
      });
      tbody.appendChild(row);
    } else if (event.target.classList.contains("remove-row")) {
      event.target.closest("tr").remove();
    }
  });

  document.getElementById("btn-form-deploy").addEventListener("click", function () {
    if (!window.confirm(S.confirmDeploy)) return;
    request++;
    status(S.deploying);
    Designer.postJson(config.deployUrl, { text: text.value }).then(function (result) {
      var data = result.data;
      if (data.ok) {
        dirty = false;
        window.location.assign(data.redirect);
        return;
      }
      showProblems(data.problems || []);
      Designer.renderFindings(findingsEl, data.findings || [], S, null);
      status(data.message || S.refused, "error");
    }).catch(function () { status(S.failed, "error"); });
  });
  window.addEventListener("beforeunload", function (event) {
    if (dirty) { event.preventDefault(); event.returnValue = S.unsaved; }
  });
})();
