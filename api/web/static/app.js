// The one script of the web app (served from /static; the CSP allows no inline script).
// Pages work without it: it only submits a select's form when it changes (the audience switch).
document.addEventListener("change", (event) => {
  const target = event.target;
  if (target instanceof HTMLSelectElement && target.classList.contains("autosubmit") && target.form) {
    target.form.submit();
  }
});
