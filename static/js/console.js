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
  } else if (box.matches("[data-row-select]") && !box.checked) {
    const region = box.closest("#table-region") || document;
    region.querySelectorAll("[data-select-page], [data-select-matching]").forEach((all) => { all.checked = false; });
  }
});
