// Shared by the designer pages: JSON posts with the CSRF token, debouncing, the findings list.
var Designer = (function () {
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function postJson(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), Accept: "application/json" },
      body: JSON.stringify(body),
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("application/json") === -1) throw new Error(String(response.status));
      return response.json().then(function (data) { return { status: response.status, data: data }; });
    });
  }

  function debounce(fn, wait) {
    var timer = null;
    return function () {
      var args = arguments;
      clearTimeout(timer);
      timer = setTimeout(function () { fn.apply(null, args); }, wait);
    };
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  // Fill <ul> with one item per finding; onPick(finding) runs when an item with an element is chosen.
  function renderFindings(list, findings, strings, onPick) {
    list.textContent = "";
    findings.forEach(function (f) {
      var item = el("li", "dz-finding dz-" + f.severity);
      var head = el("span", "dz-finding-head");
      head.appendChild(el("span", "badge dz-sev-" + f.severity, strings[f.severity] || f.severity));
      var where = f.file + (f.line ? " " + strings.line + " " + f.line : "");
      head.appendChild(el("span", "muted small", " " + where + " "));
      if (f.rule) head.appendChild(el("code", "small", f.rule));
      item.appendChild(head);
      if (f.element_id) {
        var target = el(onPick ? "button" : "span", onPick ? "link dz-element" : "dz-element",
          f.element_id + (f.element_name ? " (" + f.element_name + ")" : ""));
        if (onPick) {
          target.type = "button";
          target.addEventListener("click", function () { onPick(f); });
        }
        item.appendChild(target);
      }
      item.appendChild(el("div", "dz-message", f.message));
      list.appendChild(item);
    });
  }

  return { postJson: postJson, debounce: debounce, el: el, renderFindings: renderFindings };
})();
