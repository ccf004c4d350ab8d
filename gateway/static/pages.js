// The hosted pages' only script (progressive enhancement: every page works without it).
// A form that is being sent cannot be sent twice: its buttons are marked busy until the next page.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.getAttribute("data-sent") === "yes") { event.preventDefault(); return; }
    form.setAttribute("data-sent", "yes");
    var buttons = form.querySelectorAll("button[type=submit]");
    for (var i = 0; i < buttons.length; i++) { buttons[i].setAttribute("aria-disabled", "true"); }
  });
  // Back/forward cache: a page shown again may be sent again.
  window.addEventListener("pageshow", function () {
    var forms = document.querySelectorAll("form[data-sent]");
    for (var i = 0; i < forms.length; i++) {
      forms[i].removeAttribute("data-sent");
      var buttons = forms[i].querySelectorAll("button[aria-disabled]");
      for (var j = 0; j < buttons.length; j++) { buttons[j].removeAttribute("aria-disabled"); }
    }
  });
  // An error summary takes the focus, so a screen reader and a keyboard start from it.
  var summary = document.querySelector(".error-summary");
  if (summary) { summary.focus(); }
})();
