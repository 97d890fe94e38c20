// quantbot ui: the little behaviour the pages need beyond htmx (no build step, no deps).
// Runs page: the selected runs survive table refreshes (paging, sorting, live reloads) and
// feed the Compare link (/compare?runs=A,B) and the annotation form.
"use strict";
(function () {
  const selected = new Set();

  function syncSelection() {
    document.querySelectorAll("input.run-select").forEach(function (box) {
      box.checked = selected.has(box.value);
    });
    const ids = Array.from(selected);
    const count = document.getElementById("selected-count");
    if (count) {
      count.textContent = ids.length ? ids.length + " selected" : "No run selected";
    }
    const hidden = document.getElementById("selected-runs");
    if (hidden) { hidden.value = ids.join(","); }
    const link = document.getElementById("compare-link");
    if (link) {
      const ok = ids.length >= 2 && ids.length <= 10;
      link.setAttribute("aria-disabled", ok ? "false" : "true");
      link.href = ok ? "/compare?runs=" + ids.map(encodeURIComponent).join(",") : "/compare";
      link.title = ok ? "Compare the selected runs" : "Select 2 to 10 runs to compare";
    }
    const all = document.getElementById("select-page");
    if (all) {
      const boxes = Array.from(document.querySelectorAll("input.run-select"));
      all.checked = boxes.length > 0 && boxes.every(function (b) { return b.checked; });
    }
  }

  document.addEventListener("change", function (event) {
    const box = event.target;
    if (box.classList && box.classList.contains("run-select")) {
      if (box.checked) { selected.add(box.value); } else { selected.delete(box.value); }
      syncSelection();
    } else if (box.id === "select-page") {
      document.querySelectorAll("input.run-select").forEach(function (b) {
        if (box.checked) { selected.add(b.value); } else { selected.delete(b.value); }
      });
      syncSelection();
    }
  });

  document.addEventListener("click", function (event) {
    const link = event.target.closest && event.target.closest("a[aria-disabled='true']");
    if (link) { event.preventDefault(); }
  });

  document.addEventListener("htmx:afterSwap", syncSelection);
  document.addEventListener("DOMContentLoaded", syncSelection);
})();
