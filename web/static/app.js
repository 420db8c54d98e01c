// EthHook admin UI: the little script htmx does not cover. Everything works
// without it except copying to the clipboard and adding condition rows.
(function () {
  "use strict";
  // Confirm destructive forms: <form data-confirm="...">.
  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    if (f.dataset && f.dataset.confirm && !window.confirm(f.dataset.confirm)) {
      ev.preventDefault();
    }
  }, true);
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest && ev.target.closest("[data-copy]");
    if (b) {
      var el = document.querySelector(b.dataset.copy);
      if (el) {
        var text = el.value !== undefined ? el.value : el.textContent;
        if (navigator.clipboard) { navigator.clipboard.writeText(text); } else { el.select && el.select(); document.execCommand("copy"); }
        b.textContent = "Copied";
      }
      return;
    }
    // <button data-add-row="#template-id" data-into="#container">
    var add = ev.target.closest && ev.target.closest("[data-add-row]");
    if (add) {
      var tpl = document.querySelector(add.dataset.addRow);
      var into = document.querySelector(add.dataset.into);
      if (tpl && into) {
        var n = into.children.length;
        var html = tpl.innerHTML.replace(/__N__/g, String(n));
        into.insertAdjacentHTML("beforeend", html);
        var first = into.lastElementChild && into.lastElementChild.querySelector("input,select");
        if (first) first.focus();
      }
      return;
    }
    var rm = ev.target.closest && ev.target.closest("[data-remove-row]");
    if (rm) {
      var row = rm.closest(rm.dataset.removeRow);
      if (row) row.remove();
    }
  });
})();
