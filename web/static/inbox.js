// "Select all" for the bulk actions of the inbox.
(function () {
  var all = document.getElementById("select-all");
  if (!all) return;
  var boxes = document.querySelectorAll('input[name="task_ids"]');
  all.addEventListener("change", function () {
    boxes.forEach(function (box) { box.checked = all.checked; });
  });
})();
