// The one script of the web app (served from /static; the CSP allows no inline script).
// Pages work without it: it only submits a select's form when it changes (the audience switch).
// A choice made with the pointer submits at once; from the keyboard, arrow keys only move the
// choice (they fire "change" too, and a page must not change under a keyboard user's feet) and
// Enter submits it.
let fromKeyboard = false;
const autosubmit = (target) =>
  target instanceof HTMLSelectElement && target.classList.contains("autosubmit") && target.form;

document.addEventListener("pointerdown", () => { fromKeyboard = false; });
document.addEventListener("keydown", (event) => {
  fromKeyboard = true;
  if (event.key === "Enter" && autosubmit(event.target)) {
    event.preventDefault();
    event.target.form.submit();
  }
});
document.addEventListener("change", (event) => {
  if (autosubmit(event.target) && !fromKeyboard) {
    event.target.form.submit();
  }
});
