"use strict";
(function () {
  let errors = 0;
  window.addEventListener("error", function () {
    errors += 1;
    document.body.dataset.errors = String(errors);
  });

  const data = JSON.parse(document.getElementById("difftx-data").textContent);
  const SIDE = 420;  // CSS pixels of a map
  const STOPS = [[5,48,97],[33,102,172],[67,147,195],[146,197,222],[209,229,240],[247,247,247],
                 [253,219,199],[244,165,130],[214,96,77],[178,24,43],[103,0,31]];

  // v in [-1, 1] -> RdBu, blue negative, red positive.
  function colour(v) {
    if (!isFinite(v)) v = 0;
    const pos = (Math.max(-1, Math.min(1, v)) + 1) * 5;
    const k = Math.min(9, Math.floor(pos)), f = pos - k;
    const a = STOPS[k], b = STOPS[k + 1];
    return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
  }
  function fmt(v, digits) {
    if (v === null || v === undefined || !isFinite(v)) return "n/a";
    return Number(v).toPrecision(digits || 4).replace(/(\.\d*?)0+($|e)/, "$1$2").replace(/\.$/, "");
  }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  // How a token is shown: quoted, with spaces and line breaks visible.
  function show(tok) { return JSON.stringify(tok); }
  function tri(i, j) { return i * (i + 1) / 2 + j; }

  // The lower triangle of (layer, head, kind); head -1 is the mean over heads.
  function lowerTriangle(model, layer, head, kind) {
    const heads = model.layers[layer].maps[kind];
    if (head >= 0) return heads[head];
    const out = new Float64Array(heads[0].length);
    for (const h of heads) for (let k = 0; k < h.length; ++k) out[k] += h[k] / heads.length;
    return out;
  }

  function fnv1a(bytes) {
    let h = 0x811c9dc5;
    for (let k = 0; k < bytes.length; ++k) { h ^= bytes[k]; h = Math.imul(h, 0x01000193) >>> 0; }
    return h >>> 0;
  }

  function Panel(model, index) {
    const T = model.T;
    const root = el("section", {class: "panel", id: "panel-" + index});
    const h2 = el("h2", {}, model.name + " ");
    h2.appendChild(el("span", {class: "sub"}, model.model_type + " \u00b7 " + T + " tokens \u00b7 " +
                                             model.layers.length + " layers"));
    root.appendChild(h2);

    const controls = el("div", {class: "controls"});
    function selector(label, options) {
      const lab = el("label", {}, label + " ");
      const sel = el("select", {});
      options.forEach(function (o) { sel.appendChild(el("option", {value: o[0]}, o[1])); });
      lab.appendChild(sel);
      controls.appendChild(lab);
      return sel;
    }
    const layerSel = selector("Layer", model.layers.map(function (_, l) { return [l, String(l)]; }));
    const nHeads = model.layers[0].maps.attn.length;
    const headOpts = [[-1, "mean of heads"]];
    for (let h = 0; h < nHeads; ++h) headOpts.push([h, String(h)]);
    const headSel = selector("Head", headOpts);
    const kinds = model.model_type === "diffllama"
        ? [["attn", "A1 \u2212 \u03bb\u00b7A2"], ["attn1", "A1"], ["attn2", "A2"]]
        : [["attn", "softmax"]];
    const kindSel = selector("Map", kinds);
    root.appendChild(controls);

    const view = el("div", {class: "view"});
    const canvas = el("canvas", {class: "map", width: SIDE, height: SIDE});
    // Read back after every draw (data-checksum): say so, or the browser warns on the console.
    const mapCtx = canvas.getContext("2d", {willReadFrequently: true});
    canvas.style.width = SIDE + "px";
    canvas.style.height = SIDE + "px";
    const bar = el("div", {class: "bar"});
    const barCanvas = el("canvas", {width: 14, height: SIDE});
    const ticks = el("div", {class: "ticks"});
    bar.appendChild(barCanvas);
    bar.appendChild(ticks);
    view.appendChild(canvas);
    view.appendChild(bar);
    root.appendChild(view);
    const readout = el("div", {class: "readout"}, "Hover a cell to read query, key and value.");
    root.appendChild(readout);
    const table = el("table", {class: "stats"});
    root.appendChild(table);
    const tokenBox = el("div", {class: "tokens"});
    const tokenEls = model.tokens.map(function (t, k) {
      const s = el("span", {class: "tok", title: k + ": " + show(t)},
                   t.replace(/\n/g, "\u21b5\n").replace(/\t/g, "\u21e5"));
      if (model.span && k >= model.span[0] && k < model.span[1]) s.classList.add("span");
      tokenBox.appendChild(s);
      return s;
    });
    root.appendChild(tokenBox);

    const off = document.createElement("canvas");
    off.width = T;
    off.height = T;
    let current = null, vmax = 1e-12, hover = null;

    function render() {
      const ctx = mapCtx;
      ctx.imageSmoothingEnabled = T > SIDE;  // large maps are averaged down, small ones kept sharp
      ctx.clearRect(0, 0, SIDE, SIDE);
      ctx.drawImage(off, 0, 0, SIDE, SIDE);
      hatchMasked(ctx);
      if (hover) {
        const c = SIDE / T;
        ctx.strokeStyle = "#111";
        ctx.lineWidth = Math.max(1, Math.min(2, c / 4));
        ctx.strokeRect(hover[1] * c, hover[0] * c, c, c);
      }
    }

    // Diagonal hatch over the masked cells (key after query), drawn at screen resolution.
    function hatchMasked(ctx) {
      const c = SIDE / T;
      ctx.save();
      ctx.beginPath();
      for (let i = 0; i + 1 < T; ++i) ctx.rect((i + 1) * c, i * c, SIDE - (i + 1) * c, c);
      ctx.clip();
      ctx.strokeStyle = "#cfcfcf";
      ctx.lineWidth = 1;
      ctx.beginPath();
      for (let x = -SIDE; x < SIDE; x += 7) { ctx.moveTo(x, SIDE); ctx.lineTo(x + SIDE, 0); }
      ctx.stroke();
      ctx.restore();
    }

    function draw() {
      const layer = Number(layerSel.value), head = Number(headSel.value), kind = kindSel.value;
      current = lowerTriangle(model, layer, head, kind);
      vmax = 1e-12;
      for (let k = 0; k < current.length; ++k) vmax = Math.max(vmax, Math.abs(current[k]));
      const img = off.getContext("2d").createImageData(T, T);
      for (let i = 0; i < T; ++i) {
        for (let j = 0; j < T; ++j) {
          const p = (i * T + j) * 4;
          const c = j <= i ? colour(current[tri(i, j)] / vmax) : [238, 238, 238];
          img.data[p] = c[0]; img.data[p + 1] = c[1]; img.data[p + 2] = c[2]; img.data[p + 3] = 255;
        }
      }
      off.getContext("2d").putImageData(img, 0, 0);
      render();
      drawBar();
      drawStats(layer, head);
      if (index === 0) markDrawn(canvas);
    }

    function drawBar() {
      const ctx = barCanvas.getContext("2d");
      for (let y = 0; y < SIDE; ++y) {
        const c = colour(1 - 2 * (y + 0.5) / SIDE);
        ctx.fillStyle = "rgb(" + c.map(Math.round).join(",") + ")";
        ctx.fillRect(0, y, 14, 1);
      }
      ticks.textContent = "";
      [vmax, vmax / 2, 0, -vmax / 2, -vmax].forEach(function (v) {
        ticks.appendChild(el("span", {}, fmt(v, 3)));
      });
    }

    function drawStats(layer, head) {
      const ls = model.stats.layers[layer];
      const s = head >= 0 ? ls.heads[head] : ls.mean;
      const span = head >= 0 ? s.span : ls.span;
      const rows = [["statistics of", (head >= 0 ? "head " + head : "average over heads") +
                     ", effective map, layer " + layer]];
      if (ls.lambda !== undefined) rows.push(["\u03bb", fmt(ls.lambda)]);
      rows.push(["sparsity (|a| < " + fmt(model.stats.threshold) + ")", fmt(s.sparsity)],
                ["focus (a > " + fmt(model.stats.focus_threshold) + ")", fmt(s.focus)],
                ["entropy of positive part (nats)", fmt(s.entropy)],
                ["mean |a|", fmt(s.mean_abs)], ["max", fmt(s.max)],
                ["negative share", fmt(s.negative_share)]);
      if (span) rows.push(["attention on span", fmt(span.attention)],
                          ["attention noise", fmt(span.noise)]);
      table.textContent = "";
      rows.forEach(function (r) {
        const tr = el("tr");
        tr.appendChild(el("td", {}, r[0]));
        tr.appendChild(el("td", {}, r[1]));
        table.appendChild(tr);
      });
    }

    function cellAt(ev) {
      const r = canvas.getBoundingClientRect();
      const j = Math.floor((ev.clientX - r.left) / r.width * T);
      const i = Math.floor((ev.clientY - r.top) / r.height * T);
      return i >= 0 && j >= 0 && i < T && j < T ? [i, j] : null;
    }

    function highlight(cell) {
      tokenEls.forEach(function (e) { e.classList.remove("q", "k"); });
      if (!cell) return;
      tokenEls[cell[0]].classList.add("q");
      tokenEls[cell[1]].classList.add("k");
    }

    const tip = document.getElementById("tip");
    function showCell(cell, clientX, clientY) {
      hover = cell;
      render();
      highlight(cell);
      if (!cell) { tip.style.display = "none"; return; }
      const i = cell[0], j = cell[1];
      let text = "query " + i + " " + show(model.tokens[i]) + "\nkey   " + j + " " +
                 show(model.tokens[j]) + "\n";
      if (j > i) {
        text += "masked (key after query)";
      } else {
        text += "value " + fmt(current[tri(i, j)], 5);
        if (kindSel.value === "attn" && model.model_type === "diffllama") {
          const layer = Number(layerSel.value), head = Number(headSel.value);
          text += "  (A1 " + fmt(lowerTriangle(model, layer, head, "attn1")[tri(i, j)], 4) +
                  ", A2 " + fmt(lowerTriangle(model, layer, head, "attn2")[tri(i, j)], 4) + ")";
        }
      }
      readout.textContent = "";
      text.split("\n").forEach(function (line) { readout.appendChild(el("div", {}, line)); });
      tip.textContent = text;
      tip.style.display = "block";
      tip.style.left = (clientX + 14) + "px";
      tip.style.top = (clientY + 14) + "px";
    }
    canvas.addEventListener("mousemove", function (ev) {
      showCell(cellAt(ev), ev.clientX, ev.clientY);
    });
    canvas.addEventListener("mouseleave", function () {
      hover = null;
      render();
      highlight(null);
      tip.style.display = "none";
    });
    [layerSel, headSel, kindSel].forEach(function (s) { s.addEventListener("change", draw); });
    this.root = root;
    this.draw = draw;
    // Shows cell (i, j) as a hover would: for links such as report.html#hover=5,3.
    this.hoverCell = function (i, j) {
      if (!(i >= 0 && j >= 0 && i < T && j < T)) return;
      const r = canvas.getBoundingClientRect();
      showCell([i, j], r.left + (j + 0.5) * r.width / T, r.top + (i + 0.5) * r.height / T);
    };
  }

  function markDrawn(canvas) {
    const px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let coloured = 0;
    for (let k = 0; k < px.length; k += 4) {
      const hi = Math.max(px[k], px[k + 1], px[k + 2]), lo = Math.min(px[k], px[k + 1], px[k + 2]);
      if (hi - lo > 24) coloured += 1;
    }
    document.body.dataset.checksum = String(fnv1a(px));
    document.body.dataset.coloured = String(coloured);
    document.body.dataset.drawn = "1";
  }

  document.getElementById("title").textContent = data.title;
  const container = document.getElementById("panels");
  const panels = data.models.map(function (model, index) {
    const p = new Panel(model, index);
    container.appendChild(p.root);
    p.draw();
    return p;
  });
  const m = /^#hover=(\d+),(\d+)$/.exec(location.hash);
  if (m) panels.forEach(function (p) { p.hoverCell(Number(m[1]), Number(m[2])); });
})();
