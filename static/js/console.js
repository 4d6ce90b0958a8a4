// Small progressive enhancements; every page works without this file.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  // data-copy="#field" names an input (or a <pre>/<code>); an empty one means the block's own <pre>.
  const field = button.dataset.copy
    ? document.querySelector(button.dataset.copy)
    : button.closest(".json-block, [data-copy-scope]")?.querySelector("pre, code");
  if (!field) return;
  let text;
  if (field instanceof HTMLInputElement || field instanceof HTMLTextAreaElement) {
    field.select();
    text = field.value;
  } else {
    text = field.textContent;
  }
  navigator.clipboard?.writeText(text).then(() => {
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 2000);
  });
});

// Tables: the header box selects every row of the page; "all N matching" selects them too.
document.addEventListener("change", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement)) return;
  if (box.matches("[data-select-page], [data-select-matching]")) {
    const region = box.closest("#table-region") || document;
    region.querySelectorAll("[data-row-select]:not(:disabled)").forEach((row) => { row.checked = box.checked; });
    if (box.matches("[data-select-matching]")) {
      const page = region.querySelector("[data-select-page]");
      if (page) page.checked = box.checked;
    }
  } else if (box.matches("[data-select-category]")) {
    // A plan's "all of a category": its open items, never one an approver must tick alone (a delete).
    const form = box.form || document;
    form.querySelectorAll(`[data-row-select][data-category="${box.dataset.selectCategory}"]:not(:disabled):not([data-ticked-alone])`)
      .forEach((row) => { row.checked = box.checked; });
  } else if (box.matches("[data-row-select]") && !box.checked) {
    if (box.dataset.category && box.form) {  // one item unticked: no longer all of its category
      box.form.querySelectorAll(`[data-select-category="${box.dataset.category}"]`).forEach((all) => { all.checked = false; });
    }
    const region = box.closest("#table-region") || document;
    region.querySelectorAll("[data-select-page], [data-select-matching]").forEach((all) => { all.checked = false; });
  }
});

// One confirmation for every click that changes an application (templates/includes/confirm.html):
// a form (or a submit button) with data-confirm asks once in a <dialog>: what will happen, how
// many accounts it touches, an optional reason. Cancel (or Escape) keeps everything and gives the
// focus back; confirm posts with the reason and confirm=done. Without this script the server asks.
(() => {
  let dialog = null;
  let pending = null;

  function build() {
    dialog = document.createElement("dialog");
    dialog.className = "confirm-dialog";
    dialog.setAttribute("aria-labelledby", "confirm-dialog-title");
    dialog.setAttribute("aria-describedby", "confirm-dialog-text confirm-dialog-count");
    dialog.dataset.testid = "confirm-dialog";
    dialog.innerHTML = `
      <form method="dialog">
        <h2 id="confirm-dialog-title"></h2>
        <p id="confirm-dialog-text"></p>
        <p id="confirm-dialog-count" data-testid="confirm-count"></p>
        <div class="field">
          <label for="confirm-dialog-reason">Reason (optional)</label>
          <textarea id="confirm-dialog-reason" rows="2" maxlength="1000" aria-describedby="confirm-dialog-reason-help"></textarea>
          <p class="help" id="confirm-dialog-reason-help">Recorded with the change in the audit log.</p>
        </div>
        <div class="buttons">
          <button type="submit" value="confirm" class="danger" data-confirm-ok></button>
          <button type="submit" value="cancel" data-confirm-cancel>Go back</button>
        </div>
      </form>`;
    document.body.append(dialog);
    dialog.addEventListener("close", () => {
      const job = pending;
      pending = null;
      if (!job) return;
      if (dialog.returnValue === "confirm") {
        const { form, button } = job;
        const reason = dialog.querySelector("#confirm-dialog-reason").value;
        const field = form.querySelector("[data-confirm-reason]") || form.elements.namedItem("reason");
        if (field) field.value = reason;
        const marker = form.elements.namedItem("confirm");
        if (marker) marker.value = "done";
        button.dataset.confirmed = "1";
        button.click();  // the same click again: a plain post, or htmx's
      } else {
        job.button.focus();
      }
    });
  }

  function countOf(source, form) {
    if (source.dataset.confirmCountFrom === "selection") {
      const fields = Array.from(form.elements);
      const matching = fields.find((f) => f.matches("[data-select-matching]") && f.checked);
      if (matching) {
        const total = (matching.closest("label")?.textContent || "").match(/[\d,]+/);
        if (total) return total[0].replace(/,/g, "");
      }
      return String(fields.filter((f) => f.matches("[data-row-select]") && f.checked).length);
    }
    if (source.dataset.confirmCountFrom === "lines") {  // user names, one per line (or comma separated)
      return String(Array.from(form.querySelectorAll("textarea"))
        .flatMap((box) => box.value.split(/[\n,]/)).filter((name) => name.trim()).length);
    }
    return source.dataset.confirmCount;
  }

  function ask(source, form, button) {
    if (!dialog) build();
    const label = source.dataset.confirmLabel || button.textContent.trim() || "Confirm";
    dialog.querySelector("#confirm-dialog-title").textContent = `${label}?`;
    const chosen = form.elements.namedItem("action_type");  // "{action}": the bulk form's choice
    const action = chosen instanceof HTMLSelectElement ? chosen.selectedOptions[0]?.text || "" : "";
    dialog.querySelector("#confirm-dialog-text").textContent = source.dataset.confirm.replace("{action}", action);
    const count = countOf(source, form);
    const noun = source.dataset.confirmNoun || "account";
    const line = dialog.querySelector("#confirm-dialog-count");
    line.textContent = count === undefined ? "" : `${count} ${noun}${count === "1" ? "" : "s"} touched.`;
    line.hidden = count === undefined;
    const existing = form.querySelector("[data-confirm-reason]");
    dialog.querySelector("#confirm-dialog-reason").value = existing ? existing.value : "";
    dialog.querySelector("[data-confirm-ok]").textContent = label;
    dialog.returnValue = "";
    pending = { form, button };
    dialog.showModal();
    dialog.querySelector("#confirm-dialog-reason").focus();
  }

  // Capture: before htmx (which posts on the button's click) and before the form's submit.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[type=submit], button:not([type]), input[type=submit]");
    if (!button || !button.form || button.closest("dialog.confirm-dialog")) return;
    if (button.dataset.confirmed) { delete button.dataset.confirmed; return; }
    if (button.hasAttribute("data-confirm-skip")) return;
    const source = button.hasAttribute("data-confirm") ? button : button.form.closest("[data-confirm]");
    if (!source) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    ask(source, button.form, button);
  }, true);
})();

// A form sent back with errors: its summary takes the focus (autofocus is not enough for a region).
document.addEventListener("DOMContentLoaded", () => {
  document.querySelector("[data-error-summary]")?.focus();
});

// The integration form: only the chosen authentication method's fields show (all of them
// without this script).
function showChosenAuth(form) {
  const chosen = form.elements.namedItem("auth_type");
  if (!(chosen instanceof HTMLSelectElement)) return;
  form.querySelectorAll("[data-auth]").forEach((field) => { field.hidden = field.dataset.auth !== chosen.value; });
}
document.addEventListener("change", (event) => {
  const form = event.target.form;
  if (event.target.name === "auth_type" && form?.hasAttribute("data-auth-toggle")) showChosenAuth(form);
});
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-auth-toggle]").forEach(showChosenAuth);
});

// The account menu opens leftwards from the name at the right of the top bar; where the bar
// wrapped the name to its left edge (an admin's longer menu at 1280 px), it opens rightwards,
// so that Sign out is never off the page.
document.addEventListener("toggle", (event) => {
  const menu = event.target;
  if (!(menu instanceof HTMLDetailsElement) || !menu.classList.contains("account-menu") || !menu.open) return;
  const list = menu.querySelector("ul");
  if (!list) return;
  list.classList.remove("opens-right");
  if (list.getBoundingClientRect().left < 0) list.classList.add("opens-right");
}, true);
