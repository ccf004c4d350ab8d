// Passkey sign-in on the hosted pages (WebAuthn navigator.credentials.get), and a passkey answering the
// second-factor step. Progressive: the passkey forms are `hidden` in the HTML and shown only where this
// script runs and the browser has WebAuthn, so without either the button is absent, not broken.
// Each form[data-passkey]: data-start (the options' path), data-start-token (its CSRF token),
// data-cancelled and data-failed (messages in the page's language); hidden fields client_id, next,
// csrf_token, credential, and on the second-factor step challenge_token.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials || !navigator.credentials.get || !window.fetch) {
    return;
  }

  function bytes(base64url) {
    var base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var binary = atob(base64), out = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { out[i] = binary.charCodeAt(i); }
    return out.buffer;
  }

  function base64url(buffer) {
    var view = new Uint8Array(buffer), binary = "";
    for (var i = 0; i < view.length; i++) { binary += String.fromCharCode(view[i]); }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // PublicKeyCredentialRequestOptionsJSON -> the options navigator.credentials.get takes
  function requestOptions(json) {
    var options = {};
    for (var key in json) { if (Object.prototype.hasOwnProperty.call(json, key)) { options[key] = json[key]; } }
    options.challenge = bytes(json.challenge);
    if (json.allowCredentials) {
      options.allowCredentials = json.allowCredentials.map(function (descriptor) {
        return {type: descriptor.type, id: bytes(descriptor.id), transports: descriptor.transports};
      });
    }
    return options;
  }

  // The assertion as JSON (what PublicKeyCredential.toJSON gives where the browser has it)
  function credentialJSON(credential) {
    var response = credential.response;
    return {
      id: credential.id, rawId: base64url(credential.rawId), type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: {
        clientDataJSON: base64url(response.clientDataJSON),
        authenticatorData: base64url(response.authenticatorData),
        signature: base64url(response.signature),
        userHandle: response.userHandle ? base64url(response.userHandle) : null
      }
    };
  }

  function setUp(form) {
    var button = form.querySelector("button[type=submit]");
    var message = form.querySelector("[role=alert]");

    function busy(on) {
      form.setAttribute("data-busy", on ? "yes" : "no");
      if (on) { button.setAttribute("aria-disabled", "true"); } else { button.removeAttribute("aria-disabled"); }
    }

    function fail(text) {
      message.textContent = text || form.getAttribute("data-failed");
      message.hidden = false;
      busy(false);
      button.focus();
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      event.stopPropagation(); // the pages' double-submit guard must not mark this form sent
      if (form.getAttribute("data-busy") === "yes") { return; }
      busy(true);
      message.hidden = true;
      var body = new URLSearchParams();
      body.append("client_id", form.elements.client_id.value);
      body.append("csrf_token", form.getAttribute("data-start-token"));
      if (form.elements.challenge_token) { body.append("challenge_token", form.elements.challenge_token.value); }
      fetch(form.getAttribute("data-start"), {method: "POST", body: body, credentials: "same-origin"})
        .then(function (response) {
          return response.json().then(function (answer) {
            if (!response.ok || !answer.publicKey) { throw new Error(answer.error || ""); }
            return answer.publicKey;
          });
        })
        .then(function (publicKey) {
          return navigator.credentials.get({publicKey: requestOptions(publicKey)});
        })
        .then(function (credential) {
          if (!credential) { throw new Error(""); }
          form.elements.credential.value = JSON.stringify(credentialJSON(credential));
          HTMLFormElement.prototype.submit.call(form); // a plain POST: the answer is the next page
        })
        .catch(function (error) {
          var cancelled = error && (error.name === "NotAllowedError" || error.name === "AbortError");
          fail(cancelled ? form.getAttribute("data-cancelled") : error && error.message);
        });
    });

    form.hidden = false;
    var section = form.closest("[data-passkey-section]");
    if (section) { section.hidden = false; }
  }

  var forms = document.querySelectorAll("form[data-passkey]");
  for (var i = 0; i < forms.length; i++) { setUp(forms[i]); }
})();
