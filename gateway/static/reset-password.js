// The hosted reset dialog: posts to the GraphQL API; no external assets.
(function () {
  "use strict";
  var root = document.getElementById("reset-app");
  var clientId = root.getAttribute("data-client-id");

  function call(query, variables) {
    var headers = { "Content-Type": "application/json" };
    if (clientId) { headers["X-Application-Id"] = clientId; }
    return fetch("/graphql", {
      method: "POST", headers: headers, credentials: "omit",
      body: JSON.stringify({ query: query, variables: variables })
    }).then(function (r) { return r.json(); });
  }

  function show(id, text) {
    var el = document.getElementById(id);
    el.textContent = text; el.hidden = false;
  }

  function fail(id) { show(id, "Something went wrong. Please try again."); }

  var resetForm = document.getElementById("reset-form");
  if (resetForm) {
    resetForm.addEventListener("submit", function (event) {
      event.preventDefault();
      document.getElementById("reset-error").hidden = true;
      var form = new FormData(resetForm);
      call("mutation Reset($input: PasswordResetInput!) { passwordReset(input: $input) { __typename " +
           "... on Error { message } ... on PasswordPolicyError { reasons } " +
           "... on RateLimitedError { retryAfterSeconds } } }",
           { input: { token: form.get("token"), newPassword: form.get("newPassword"),
                      confirmPassword: form.get("confirmPassword") } })
        .then(function (body) {
          var result = body.data && body.data.passwordReset;
          if (!result) { return fail("reset-error"); }
          if (result.__typename === "PasswordResetDone") {
            document.getElementById("reset-section").hidden = true;
            document.getElementById("reset-done").hidden = false;
          } else if (result.__typename === "InvalidTokenError") {
            document.getElementById("reset-section").hidden = true;
            document.getElementById("expired-section").hidden = false;
          } else if (result.__typename === "PasswordPolicyError") {
            show("reset-error", result.message + " " + result.reasons.map(function (r) {
              var advice = r.split(": ").slice(1).join(": ") || r;  // "TOO_SHORT: use at least 8 characters"
              return advice.charAt(0).toUpperCase() + advice.slice(1); }).join(". ") + ".");
          } else {
            show("reset-error", result.message);
          }
        }, function () { fail("reset-error"); });
    });
  }

  var requestForm = document.getElementById("request-form");
  requestForm.addEventListener("submit", function (event) {
    event.preventDefault();
    document.getElementById("request-error").hidden = true;
    call("mutation Ask($input: PasswordResetRequestInput!) { passwordResetRequest(input: $input) { __typename " +
         "... on Error { message } } }", { input: { email: new FormData(requestForm).get("email") } })
      .then(function (body) {
        var result = body.data && body.data.passwordResetRequest;
        if (!result) { return fail("request-error"); }
        if (result.__typename === "PasswordResetRequested") {
          requestForm.hidden = true;
          document.getElementById("request-done").hidden = false;
        } else {
          show("request-error", result.message);
        }
      }, function () { fail("request-error"); });
  });
})();
