// The account portal's script (gateway/pages/portal.py).
// 1. A download form (data-download) starts a download and stays on the page: pages.js marks a sent form
//    busy until the next page, so this one is made ready again once the download has begun.
// 2. "Add a passkey": the one thing in the portal that needs the browser's WebAuthn API. Without it (or
//    without JavaScript) the form stays hidden and a hint says why. Both steps post the page's form fields
//    (with their CSRF tokens) and read JSON: {publicKey}, {redirect} or {error}.
(function () {
  "use strict";
  function ready(form) {
    form.removeAttribute("data-sent");
    var buttons = form.querySelectorAll("button[aria-disabled]");
    for (var i = 0; i < buttons.length; i++) { buttons[i].removeAttribute("aria-disabled"); }
  }

  var downloads = document.querySelectorAll("form[data-download]");
  for (var d = 0; d < downloads.length; d++) {
    downloads[d].addEventListener("submit", function (event) {
      var sent = event.target;
      window.setTimeout(function () { ready(sent); }, 2000);
    });
  }

  var form = document.getElementById("passkey-add");
  var credentials = window.PublicKeyCredential;
  if (!form || !credentials || !credentials.parseCreationOptionsFromJSON || !navigator.credentials) { return; }
  var hint = document.getElementById("passkey-needs-js");
  var problem = document.getElementById("passkey-add-error");
  form.hidden = false;
  if (hint) { hint.hidden = true; }

  function fail(message) {
    problem.textContent = message;
    problem.hidden = false;
    ready(form);
  }

  function post(url, fields) {
    return fetch(url, {method: "POST", body: new URLSearchParams(fields), credentials: "same-origin",
                       headers: {"accept": "application/json"}})
      .then(function (response) { return response.json(); });
  }

  function follow(answer) {
    if (answer.redirect) { window.location.assign(answer.redirect); return true; }
    if (answer.error) { fail(answer.error); return true; }
    return false;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (form.getAttribute("data-busy") === "yes") { return; }
    form.setAttribute("data-busy", "yes");
    problem.hidden = true;
    var fields = new FormData(form);
    post(form.action, fields).then(function (answer) {
      if (follow(answer)) { return null; }
      var options = credentials.parseCreationOptionsFromJSON(answer.publicKey);
      return navigator.credentials.create({publicKey: options});
    }).then(function (credential) {
      if (!credential) { return null; }
      return post(form.getAttribute("data-finish"), {
        client_id: fields.get("client_id"), csrf_token: form.getAttribute("data-finish-token"),
        name: fields.get("passkey_name") || "", credential: JSON.stringify(credential.toJSON())
      }).then(follow);
    }).catch(function () {
      fail(form.getAttribute("data-failed") || "The passkey was not added.");
    }).then(function () { form.removeAttribute("data-busy"); });
  });
})();
