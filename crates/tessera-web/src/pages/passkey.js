// The passkey buttons of Tessera's hosted pages. The pages work without this script; it
// only shows what needs WebAuthn: "Sign in with a passkey" on the login page and "Use your
// passkey" on the second-factor page. Options come from the node as JSON with binary
// fields in base64url; the authenticator's answer goes back the same way, in a hidden
// field of the page's own form (so the CSRF token and the authorization request travel as
// with every other form).
"use strict";
(function () {
  function fromB64url(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(b64 + "===".slice((b64.length + 3) % 4));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map(function (c) {
      return Object.assign({}, c, { id: fromB64url(c.id) });
    });
  }

  // navigator.credentials.create for `options` ({publicKey: …} as the node sends it);
  // resolves to the JSON the node's confirm endpoint takes.
  function create(options) {
    var pk = Object.assign({}, options.publicKey);
    pk.challenge = fromB64url(pk.challenge);
    pk.user = Object.assign({}, pk.user, { id: fromB64url(pk.user.id) });
    pk.excludeCredentials = withIds(pk.excludeCredentials);
    return navigator.credentials.create({ publicKey: pk }).then(function (cred) {
      return {
        id: cred.id,
        rawId: toB64url(cred.rawId),
        type: cred.type,
        response: {
          attestationObject: toB64url(cred.response.attestationObject),
          clientDataJSON: toB64url(cred.response.clientDataJSON),
          transports: cred.response.getTransports ? cred.response.getTransports() : undefined,
        },
        extensions: cred.getClientExtensionResults(),
      };
    });
  }

  // navigator.credentials.get for `options`; resolves to the JSON of the assertion.
  function get(options) {
    var pk = Object.assign({}, options.publicKey);
    pk.challenge = fromB64url(pk.challenge);
    pk.allowCredentials = withIds(pk.allowCredentials);
    return navigator.credentials.get({ publicKey: pk }).then(function (cred) {
      var r = cred.response;
      return {
        id: cred.id,
        rawId: toB64url(cred.rawId),
        type: cred.type,
        response: {
          authenticatorData: toB64url(r.authenticatorData),
          clientDataJSON: toB64url(r.clientDataJSON),
          signature: toB64url(r.signature),
          userHandle: r.userHandle ? toB64url(r.userHandle) : null,
        },
        extensions: cred.getClientExtensionResults(),
      };
    });
  }

  function json(response) {
    if (!response.ok) throw new Error("the node answered " + response.status);
    return response.json();
  }

  window.TesseraPasskeys = { create: create, get: get };
  if (!window.PublicKeyCredential || !navigator.credentials) return;

  // The login page: a usernameless sign-in.
  var signIn = document.getElementById("passkey-sign-in");
  if (signIn) {
    signIn.hidden = false;
    signIn.addEventListener("submit", function (event) {
      event.preventDefault();
      var fields = new URLSearchParams(new FormData(signIn));
      fetch(signIn.dataset.options, { method: "POST", body: fields, credentials: "same-origin" })
        .then(json)
        .then(function (options) {
          signIn.elements.passkey_token.value = options.passkeyToken;
          return get(options);
        })
        .then(function (answer) {
          signIn.elements.credential.value = JSON.stringify(answer);
          signIn.submit();
        })
        .catch(function () {
          // Cancelled or refused: the password form is still there.
        });
    });
  }

  // The second-factor page: the passkey instead of a code.
  var factor = document.getElementById("passkey-factor");
  if (factor) {
    var form = factor.form;
    factor.hidden = false;
    factor.addEventListener("click", function () {
      var body = JSON.stringify({ mfaToken: form.elements.mfa_token.value, method: "webauthn" });
      fetch(factor.dataset.options, {
        method: "POST",
        body: body,
        headers: { "Content-Type": "application/json" },
        credentials: "same-origin",
      })
        .then(json)
        .then(get)
        .then(function (answer) {
          form.elements.credential.value = JSON.stringify(answer);
          form.elements.method.value = "webauthn";
          form.elements.code.required = false;
          form.submit();
        })
        .catch(function () {
          // Cancelled or refused: the code field is still there.
        });
    });
  }
})();
