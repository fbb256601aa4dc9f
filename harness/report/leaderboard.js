// index.html's behaviour, no library: sort a column (inside each row group), filter by language,
// model group and task, open a model's plots. The page reads without it (all rows and columns shown).
"use strict";
(function () {
  const boards = Array.from(document.querySelectorAll("section.board"));

  // ---------------------------------------------------------------- sorting
  // A cell's sort key: data-sort (the number, or the text of text columns); "" sorts last both ways.
  function sortKey(cell) {
    const raw = cell ? cell.getAttribute("data-sort") : "";
    if (raw === null || raw === "") return null;
    const n = Number(raw);
    return Number.isNaN(n) ? raw.toLowerCase() : n;
  }

  function compare(a, b, direction) {
    if (a === null && b === null) return 0;
    if (a === null) return 1;
    if (b === null) return -1;
    if (typeof a !== typeof b) return (typeof a === "number" ? -1 : 1);
    return (a < b ? -1 : a > b ? 1 : 0) * direction;
  }

  function sortBy(board, th) {
    const table = board.querySelector("table");
    const index = Array.from(th.parentNode.children).indexOf(th);
    const numeric = th.getAttribute("data-kind") !== "model" && th.getAttribute("data-kind") !== "text";
    const first = numeric && th.getAttribute("data-better") !== "lower" ? "descending" : "ascending";
    const now = th.getAttribute("aria-sort");
    const next = now ? (now === "ascending" ? "descending" : "ascending") : first;
    table.querySelectorAll("thead th[aria-sort]").forEach((h) => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", next);
    const direction = next === "ascending" ? 1 : -1;
    table.querySelectorAll("tbody").forEach((tbody) => {
      const rows = Array.from(tbody.querySelectorAll("tr[data-upstream]"));
      const keyed = rows.map((row, i) => ({ row, i, key: sortKey(row.children[index]) }));
      keyed.sort((x, y) => compare(x.key, y.key, direction) || x.i - y.i);
      keyed.forEach(({ row }) => tbody.appendChild(row));
    });
  }

  boards.forEach((board) => {
    board.querySelectorAll("thead th").forEach((th) => {
      const button = th.querySelector("button.sort");
      if (button) button.addEventListener("click", () => sortBy(board, th));
    });
  });

  // ---------------------------------------------------------------- filters
  const selects = Array.from(document.querySelectorAll("select[data-filter]"));

  function chosen() {
    const out = {};
    selects.forEach((s) => { out[s.getAttribute("data-filter")] = s.value; });
    return out;
  }

  // A column stays unless it is about another language or task than the chosen one.
  function columnShown(th, f) {
    const lang = th.getAttribute("data-lang"), task = th.getAttribute("data-task");
    return !(f.lang && lang && lang !== f.lang) && !(f.task && task && task !== f.task);
  }

  function applyFilters() {
    const f = chosen();
    let tablesShown = 0, rowsShown = 0;
    boards.forEach((board) => {
      const heads = Array.from(board.querySelectorAll("thead th"));
      const shown = heads.map((th) => columnShown(th, f));
      const faceted = heads.filter((th) => th.getAttribute("data-lang") || th.getAttribute("data-task"));
      const facetedShown = faceted.filter((th) => columnShown(th, f));
      heads.forEach((th, i) => th.classList.toggle("off", !shown[i]));
      board.querySelectorAll("tr[data-upstream]").forEach((row) => {
        Array.from(row.children).forEach((cell, i) => cell.classList.toggle("off", !shown[i]));
      });
      // Under a language or task filter, a row never run for it (every such cell "missing") goes;
      // a failed one (n/a, with its note) stays.
      const narrowed = facetedShown.length > 0 && (f.lang || f.task);
      const facetedIndex = heads.map((th, i) => (shown[i] && (th.getAttribute("data-lang") || th.getAttribute("data-task")) ? i : -1))
        .filter((i) => i >= 0);
      let rows = 0;
      board.querySelectorAll("tbody").forEach((tbody) => {
        let visible = 0;
        tbody.querySelectorAll("tr[data-upstream]").forEach((row) => {
          const never = narrowed && facetedIndex.every((i) => row.children[i].getAttribute("data-status") === "missing");
          row.classList.toggle("off", Boolean(never));
          if (!never) visible += 1;
        });
        const off = (Boolean(f.group) && tbody.getAttribute("data-group") !== f.group) || visible === 0;
        tbody.classList.toggle("off", off);
        const groupHead = tbody.querySelector("tr.group th");
        if (groupHead) groupHead.colSpan = shown.filter(Boolean).length;
        if (!off) rows += visible;
      });
      const hidden = rows === 0 || (faceted.length > 0 && facetedShown.length === 0);
      board.classList.toggle("off", hidden);
      if (!hidden) { tablesShown += 1; rowsShown += rows; }
    });
    const status = document.getElementById("filter-status");
    if (status) status.textContent = tablesShown + " of " + boards.length + " tables shown";
  }

  selects.forEach((s) => s.addEventListener("change", applyFilters));
  applyFilters();

  // ---------------------------------------------------------------- a model's plots
  const dialog = document.getElementById("model-plots");
  document.querySelectorAll("button.model").forEach((button) => {
    button.addEventListener("click", () => {
      const grid = dialog.querySelector(".grid");
      grid.replaceChildren();
      document.getElementById("model-plots-title").textContent = "Plots of " + button.textContent;
      button.getAttribute("data-plots").split("|").filter(Boolean).forEach((path) => {
        const figure = document.createElement("figure");
        const link = document.createElement("a");
        const img = document.createElement("img");
        const caption = document.createElement("figcaption");
        link.href = encodeURI(path);
        img.src = encodeURI(path);
        img.alt = path;
        caption.textContent = path;
        link.appendChild(img);
        figure.append(link, caption);
        grid.appendChild(figure);
      });
      if (typeof dialog.showModal === "function") dialog.showModal(); else dialog.setAttribute("open", "");
    });
  });
})();
