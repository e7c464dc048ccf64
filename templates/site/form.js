/* takeback: the campaign form, sent with fetch instead of a page load.
 *
 * Works on every <form data-takeback-form> in the page (the campaign pages
 * and the embeddable snippet). Without this script the form is a plain POST
 * and the API answers with its own pages; with it:
 *  - the form is sent as JSON to its own action URL, the button disabled
 *    while it is on its way;
 *  - field errors from the API (422) appear next to their fields, linked
 *    with aria-describedby, summed up in the aria-live region, and the
 *    first faulty field gets the focus;
 *  - a network failure or a 5xx keeps everything typed and asks to retry;
 *  - success replaces the form with the "check your inbox" message.
 * Every text it shows comes from the page (data-msg-* attributes and the
 * hidden success panel), so the script is the same in both languages.
 * No dependencies, no build step, nothing loaded from anywhere else.
 */
(function () {
  "use strict";

  var RETRYABLE = [408, 425, 429];

  function each(list, callback) {
    Array.prototype.forEach.call(list, callback);
  }

  function controlsFor(form, name) {
    var control = form.elements.namedItem(name);
    if (!control) return [];
    // Radio buttons share a name: every one of them is marked.
    if (typeof control.length === "number" && !control.tagName) {
      return Array.prototype.slice.call(control);
    }
    return [control];
  }

  function describedBy(control, id, add) {
    var ids = (control.getAttribute("aria-describedby") || "").split(/\s+/).filter(function (x) {
      return x && x !== id;
    });
    if (add) ids.unshift(id);
    if (ids.length) control.setAttribute("aria-describedby", ids.join(" "));
    else control.removeAttribute("aria-describedby");
  }

  function Takeback(form) {
    this.form = form;
    this.root = form.closest("[data-takeback]") || form.parentNode;
    this.status = this.root.querySelector("[data-takeback-status]");
    this.success = this.root.querySelector("[data-takeback-success]");
    this.button = form.querySelector("button[type=submit], button:not([type])");
    this.sending = false;
    // The API's messages replace the browser's own validation bubbles.
    form.noValidate = true;
    form.addEventListener("submit", this.submit.bind(this));
  }

  Takeback.prototype.say = function (text, isError) {
    if (!this.status) return;
    this.status.classList.toggle("is-error", Boolean(isError));
    this.status.textContent = text;
  };

  Takeback.prototype.clearErrors = function () {
    var form = this.form;
    each(form.querySelectorAll("[data-error-for]"), function (element) {
      element.textContent = "";
      element.hidden = true;
      controlsFor(form, element.getAttribute("data-error-for")).forEach(function (control) {
        control.removeAttribute("aria-invalid");
        describedBy(control, element.id, false);
      });
    });
  };

  Takeback.prototype.showErrors = function (errors) {
    var form = this.form;
    var lines = [];
    var first = null;
    var separator = form.getAttribute("data-msg-separator") || ": ";
    Object.keys(errors).forEach(function (field) {
      var message = String(errors[field]);
      var element = form.querySelector('[data-error-for="' + field + '"]');
      var controls = controlsFor(form, field);
      if (!element || !controls.length) {
        lines.push(message);
        return;
      }
      element.textContent = message;
      element.hidden = false;
      controls.forEach(function (control) {
        control.setAttribute("aria-invalid", "true");
        describedBy(control, element.id, true);
      });
      first = first || controls[0];
      lines.push(element.getAttribute("data-label") + separator + message);
    });
    this.say(form.getAttribute("data-msg-errors") + " " + lines.join(" "), true);
    if (first) first.focus();
  };

  Takeback.prototype.succeed = function (email) {
    this.say("", false);
    this.form.hidden = true;
    if (!this.success) return;
    var slot = this.success.querySelector("[data-takeback-email]");
    if (slot) slot.textContent = email;
    this.success.hidden = false;
    this.success.focus();
  };

  Takeback.prototype.retry = function () {
    this.say(this.form.getAttribute("data-msg-retry"), true);
  };

  Takeback.prototype.submit = function (event) {
    event.preventDefault();
    if (this.sending) return;
    var self = this;
    var form = this.form;
    var data = {};
    new FormData(form).forEach(function (value, name) {
      data[name] = typeof value === "string" ? value : "";
    });
    this.sending = true;
    this.clearErrors();
    this.say(form.getAttribute("data-msg-sending"), false);
    form.setAttribute("aria-busy", "true");
    if (this.button) this.button.disabled = true;

    fetch(form.getAttribute("action"), {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(data),
      credentials: "omit",
      cache: "no-store",
    })
      .then(function (response) {
        if (response.ok) {
          self.succeed(data.email || "");
          return;
        }
        if (response.status >= 500 || RETRYABLE.indexOf(response.status) !== -1) {
          self.retry();
          return;
        }
        return response.json().then(
          function (body) {
            if (body && body.errors && typeof body.errors === "object") self.showErrors(body.errors);
            else self.retry();
          },
          function () {
            self.retry();
          }
        );
      })
      .catch(function () {
        self.retry();
      })
      .then(function () {
        self.sending = false;
        form.removeAttribute("aria-busy");
        if (self.button) {
          self.button.disabled = false;
          // Disabling the button took the focus away; give it back unless
          // an error moved it to a field or success moved it to the message.
          if (!form.hidden && (document.activeElement === document.body || !document.activeElement)) {
            self.button.focus();
          }
        }
      });
  };

  function start() {
    each(document.querySelectorAll("form[data-takeback-form]"), function (form) {
      if (!form.takeback) form.takeback = new Takeback(form);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
