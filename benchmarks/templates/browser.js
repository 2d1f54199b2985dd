/* The task browser of a GenAgent benchmark report (tasks.html).

   Data: tasks/meta.js calls GA.meta(...), tasks/index-<k>.js GA.tasks(k, [...]) with one entry per
   task (id, tag, prompt, the outcome of every episode as a string of 1/0/-), and tasks/t/<n>.js
   GA.task(n, part, [...]) with the episodes of task n; those are loaded only for the tasks on the
   page. Everything from the run is put into the page with textContent (never parsed as HTML).
   The filters live in the location hash (#tag=color&agent=scripted&outcome=fail...), so a view can
   be linked; the leaderboard links to the browser that way. */
(function () {
  'use strict';
  var GA = window.GA = {};
  var meta = null;
  var tasks = [];
  var store = {};
  var state = null;
  var renderToken = 0;
  var lastHash = null;
  var timing = GA.timing = {first: true};

  GA.meta = function (value) { meta = value; };
  GA.tasks = function (part, list) { for (var i = 0; i < list.length; i++) { tasks.push(list[i]); } };
  GA.task = function (number, part, episodes) {
    var entry = store[number];
    if (!entry || entry.parts[part]) { return; }
    entry.parts[part] = episodes;
    entry.got += 1;
    if (entry.got === entry.need) { finish(entry, true); }
  };

  function finish(entry, ok) {
    entry.done = true;
    entry.ok = ok;
    var callbacks = entry.callbacks;
    entry.callbacks = [];
    for (var i = 0; i < callbacks.length; i++) { callbacks[i](); }
  }

  function pad(number) { var text = String(number); while (text.length < 5) { text = '0' + text; } return text; }

  function loadTask(task, callback) {
    var entry = store[task.n];
    if (entry && entry.done) { callback(); return; }
    if (!entry) {
      entry = store[task.n] = {parts: [], need: task.parts, got: 0, done: false, ok: false, callbacks: []};
      for (var p = 0; p < task.parts; p++) {
        var script = document.createElement('script');
        script.src = 'tasks/t/' + pad(task.n) + (p ? '-' + p : '') + '.js';
        script.onerror = function () { if (!entry.done) { finish(entry, false); } };
        document.head.appendChild(script);
      }
    }
    entry.callbacks.push(callback);
  }

  function episodesOf(number) {
    var entry = store[number];
    var out = [];
    for (var p = 0; p < entry.parts.length; p++) { out = out.concat(entry.parts[p] || []); }
    return out;
  }

  /* ------------------------------------------------------------------ small DOM helpers */

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function add(parent, child) { parent.appendChild(child); return child; }

  function fmt(value, digits) { return value === null || value === undefined ? '–' : Number(value).toFixed(digits); }

  /* ------------------------------------------------------------------ state: form and hash */

  var form = null;

  function checked(name) {
    var out = [];
    var boxes = form.querySelectorAll('input[name="' + name + '"]');
    for (var i = 0; i < boxes.length; i++) { if (boxes[i].checked) { out.push(Number(boxes[i].value)); } }
    return out;
  }

  function readForm() {
    var q = form.elements.q.value;
    return {
      q: q,
      terms: q.toLowerCase().split(/\s+/).filter(Boolean),
      tag: form.elements.tag.value,
      agents: checked('agent'),
      generators: checked('generator'),
      rounds: checked('rounds').map(function (i) { return i; }),
      seed: form.elements.seed.value,
      outcome: form.elements.outcome.value,
      per: Number(form.elements.per.value) || 5,
      text: form.elements.text.value,
      page: 0
    };
  }

  function setBoxes(name, wanted) {
    var boxes = form.querySelectorAll('input[name="' + name + '"]');
    for (var i = 0; i < boxes.length; i++) { boxes[i].checked = wanted(boxes[i].value); }
  }

  function setSelect(select, value) {
    for (var i = 0; i < select.options.length; i++) {
      if (select.options[i].value === value) { select.value = value; return; }
    }
  }

  function parseHash() {
    var out = {};
    var text = location.hash.replace(/^#/, '');
    if (!text) { return out; }
    var pairs = text.split('&');
    for (var i = 0; i < pairs.length; i++) {
      var at = pairs[i].indexOf('=');
      if (at < 0) { continue; }
      var key = pairs[i].slice(0, at);
      var values = pairs[i].slice(at + 1).split(',').map(function (v) {
        try { return decodeURIComponent(v); } catch (error) { return v; }
      });
      out[key.replace(/s$/, '')] = values;
    }
    return out;
  }

  function applyHash() {
    var h = parseHash();
    form.elements.q.value = h.q ? h.q.join(',') : '';
    setSelect(form.elements.tag, h.tag ? h.tag[0] : '');
    var names = meta.agents.map(function (a) { return a.name; });
    setBoxes('agent', function (v) { return !h.agent || h.agent.indexOf(names[Number(v)]) >= 0; });
    setBoxes('generator', function (v) { return !h.generator || h.generator.indexOf(meta.generators[Number(v)]) >= 0; });
    setBoxes('rounds', function (v) { return !h.round || h.round.indexOf(v) >= 0; });
    setSelect(form.elements.seed, h.seed ? h.seed[0] : String(meta.seeds[0]));
    setSelect(form.elements.outcome, h.outcome ? h.outcome[0] : 'any');
    setSelect(form.elements.per, h.per ? h.per[0] : '5');
    setSelect(form.elements.text, h.text ? h.text[0] : 'short');
    state = readForm();
    state.page = h.page ? Math.max(0, (parseInt(h.page[0], 10) || 1) - 1) : 0;
  }

  function hashOf(st) {
    var parts = [];
    function put(key, values) { parts.push(key + '=' + values.map(encodeURIComponent).join(',')); }
    if (st.q) { put('q', [st.q]); }
    if (st.tag) { put('tag', [st.tag]); }
    if (st.agents.length !== meta.agents.length) { put('agent', st.agents.map(function (i) { return meta.agents[i].name; })); }
    if (st.generators.length !== meta.generators.length) { put('generator', st.generators.map(function (i) { return meta.generators[i]; })); }
    if (st.rounds.length !== meta.rounds.length) { put('rounds', st.rounds.map(String)); }
    if (st.seed !== String(meta.seeds[0])) { put('seed', [st.seed]); }
    if (st.outcome !== 'any') { put('outcome', [st.outcome]); }
    if (st.per !== 5) { put('per', [String(st.per)]); }
    if (st.text !== 'short') { put('text', [st.text]); }
    if (st.page) { put('page', [String(st.page + 1)]); }
    return parts.join('&');
  }

  function saveHash() {
    var text = hashOf(state);
    lastHash = text;
    var url = location.href.replace(/#.*$/, '') + (text ? '#' + text : '');
    try { history.replaceState(null, '', url); } catch (error) { location.hash = text; }
  }

  /* ------------------------------------------------------------------ filtering */

  function shownCombos(st) {
    var out = [];
    for (var c = 0; c < meta.combos.length; c++) {
      var combo = meta.combos[c];
      if (st.agents.indexOf(combo[0]) >= 0 && st.generators.indexOf(combo[1]) >= 0 &&
          st.rounds.indexOf(combo[2]) >= 0) { out.push(c); }
    }
    return out;
  }

  function shownSeeds(st) {
    if (st.seed === 'all') { return meta.seeds.map(function (s, i) { return i; }); }
    var index = meta.seeds.indexOf(Number(st.seed));
    return index < 0 ? [0] : [index];
  }

  function count(task, combos, seeds) {
    var n = meta.seeds.length;
    var passed = 0;
    var failed = 0;
    for (var i = 0; i < combos.length; i++) {
      for (var j = 0; j < seeds.length; j++) {
        var mark = task.o.charAt(combos[i] * n + seeds[j]);
        if (mark === '1') { passed += 1; } else if (mark === '0') { failed += 1; }
      }
    }
    return {passed: passed, failed: failed};
  }

  function matches(task, st, combos, seeds) {
    if (st.tag && task.col !== st.tag) { return false; }
    if (st.terms.length) {
      if (task.hay === undefined) { task.hay = (task.id + ' ' + task.tag + ' ' + task.col + ' ' + task.prompt).toLowerCase(); }
      for (var i = 0; i < st.terms.length; i++) { if (task.hay.indexOf(st.terms[i]) < 0) { return false; } }
    }
    var c = count(task, combos, seeds);
    if (c.passed + c.failed === 0) { return false; }
    if (st.outcome === 'pass') { return c.passed > 0; }
    if (st.outcome === 'fail') { return c.failed > 0; }
    if (st.outcome === 'mixed') { return c.passed > 0 && c.failed > 0; }
    return true;
  }

  /* ------------------------------------------------------------------ rendering */

  function missingImage(img) {
    var box = img.parentNode;
    var note = el('span', '', 'image not found');
    if (box && box.parentNode) { box.parentNode.replaceChild(note, box); }
    var banner = document.getElementById('missing-images');
    if (banner) { banner.hidden = false; }
  }

  function round(r, index, episode) {
    var final = episode.final === index + 1;
    var row = el('div', 'rd' + (final ? ' final' : ''));
    var pic = add(row, el('div', 'pic'));
    if (r.img) {
      var link = add(pic, el('a'));
      link.href = r.img;
      link.target = '_blank';
      link.rel = 'noopener';
      var img = add(link, el('img'));
      img.loading = 'lazy';
      img.decoding = 'async';
      img.width = 84;
      img.height = 84;
      img.alt = 'round ' + (index + 1);
      img.addEventListener('error', function () { missingImage(img); });
      img.src = r.img;
    } else {
      pic.textContent = 'image not saved';
    }
    var text = add(row, el('div'));
    var head = 'round ' + (index + 1) + (final ? ' · final' : '') + (r.tool ? ' · ' + r.tool : '') +
      (r.seed !== null && r.seed !== undefined ? ' · seed ' + r.seed : '');
    add(text, el('p', 'k', head));
    pic.title = head;
    var prompt = add(text, el('p', 'clamp'));
    add(prompt, el('b', '', 'prompt '));
    prompt.appendChild(document.createTextNode(r.prompt || '—'));
    prompt.title = 'click to show all';
    var judge = add(text, el('p', 'clamp'));
    add(judge, el('b', '', 'judge '));
    judge.appendChild(document.createTextNode(r.judge === null || r.judge === undefined ? '— (no verdict)' : r.judge));
    judge.title = 'click to show all';
    if (r.decision) {
      var d = r.decision;
      var words = 'decision: ' + d.kind + (d.submitted ? ' → image ' + d.submitted : '') +
        (d.correct === true ? ' ✓ right call' : d.correct === false ? ' ✗ wrong call' : '');
      var dec = add(text, el('p', 'dec' + (d.correct === true ? ' ok' : d.correct === false ? ' bad' : ''), words));
      dec.title = 'whether retrying or submitting was right for this image (what the reflection reward scores)';
    }
    return row;
  }

  function episode(e, st, showSeed) {
    var hidden = (st.outcome === 'pass' && !e.pass) || (st.outcome === 'fail' && e.pass);
    var box = el('div', 'ep ' + (e.pass ? 'pass' : 'fail') + (hidden ? ' hidden' : ''));
    var head = add(box, el('div', 'eh'));
    add(head, el('span', 'badge ' + (e.pass ? 'pass' : 'fail'), e.pass ? 'PASS' : 'FAIL'));
    if (showSeed) { add(head, el('span', 'k', 'seed ' + meta.seeds[e.s])); }
    if (hidden) { add(head, el('span', 'k', 'hidden by the outcome filter')); return box; }
    add(head, el('span', '', 'score ' + fmt(e.score, 2)));
    var reward = add(head, el('span', 'k', 'reward ' + fmt(e.reward, 2)));
    var parts = [];
    for (var key in e.parts) { if (Object.prototype.hasOwnProperty.call(e.parts, key)) { parts.push(key + ' ' + fmt(e.parts[key], 3)); } }
    reward.title = parts.join(', ');
    if (e.violations) { add(head, el('span', 'k', e.violations + ' violation' + (e.violations === 1 ? '' : 's'))); }
    add(head, el('span', 'k', e.final ? 'submitted image ' + e.final : 'nothing submitted'));
    if (!e.rounds.length) { add(box, el('p', 'empty', 'no image was made')); }
    for (var i = 0; i < e.rounds.length; i++) { box.appendChild(round(e.rounds[i], i, e)); }
    return box;
  }

  function card(task, st, combos, seeds) {
    var article = el('article', 'task');
    var h = add(article, el('h3'));
    add(h, el('span', 'chip', meta.benchmarks[task.b] || ''));
    add(h, el('span', 'chip', task.tag));
    add(h, el('span', 'tid', task.id));
    add(article, el('p', 'prompt', task.prompt));
    var shown = count(task, combos, seeds);
    var everything = count(task, meta.combos.map(function (c, i) { return i; }), meta.seeds.map(function (s, i) { return i; }));
    add(article, el('p', 'note', 'passed ' + shown.passed + ' of the ' + (shown.passed + shown.failed) +
      ' episodes shown; ' + everything.passed + ' of ' + (everything.passed + everything.failed) + ' in the run'));
    add(article, el('p', 'empty', 'loading…'));
    var pairs = {};
    var n = meta.seeds.length;
    for (var i = 0; i < combos.length; i++) {
      for (var j = 0; j < seeds.length; j++) {
        if (task.o.charAt(combos[i] * n + seeds[j]) !== '-') { pairs[meta.combos[combos[i]][0] + ':' + meta.combos[combos[i]][1]] = 1; }
      }
    }
    /* Room for the grid before its data comes, so that the cards below start off the first screen. */
    article.style.minHeight = (90 + 150 * Object.keys(pairs).length) + 'px';
    return article;
  }

  function grid(article, task, st, combos, seeds) {
    var loading = article.querySelector('p.empty');
    if (loading) { article.removeChild(loading); }
    article.style.minHeight = '';
    article.setAttribute('data-filled', '1');
    var entry = store[task.n];
    if (!entry.ok) { add(article, el('p', 'warn', 'The data of this task could not be loaded (tasks/t/' + pad(task.n) + '.js).')); return; }
    var n = meta.seeds.length;
    var byKey = {};
    var episodes = episodesOf(task.n);
    for (var i = 0; i < episodes.length; i++) { byKey[episodes[i].c * n + episodes[i].s] = episodes[i]; }
    var rounds = [];
    var pairs = [];
    var cell = {};
    for (var k = 0; k < combos.length; k++) {
      var combo = meta.combos[combos[k]];
      var present = false;
      for (var j = 0; j < seeds.length; j++) { if (byKey[combos[k] * n + seeds[j]]) { present = true; } }
      if (!present) { continue; }
      if (rounds.indexOf(combo[2]) < 0) { rounds.push(combo[2]); }
      var pair = combo[0] + ':' + combo[1];
      if (pairs.indexOf(pair) < 0) { pairs.push(pair); }
      cell[pair + ':' + combo[2]] = combos[k];
    }
    rounds.sort(function (a, b) { return a - b; });
    var table = add(article, el('table', 'grid'));
    var headRow = add(add(table, el('thead')), el('tr'));
    add(headRow, el('th', 'who', 'agent · generator'));
    for (var r = 0; r < rounds.length; r++) { add(headRow, el('th', '', rounds[r] + ' round' + (rounds[r] === 1 ? '' : 's') + ' max')); }
    var body = add(table, el('tbody'));
    for (var p = 0; p < pairs.length; p++) {
      var ids = pairs[p].split(':');
      var agent = meta.agents[Number(ids[0])];
      var tr = add(body, el('tr', agent.oracle ? 'orow' : ''));
      var who = add(tr, el('th', 'who'));
      var sw = add(who, el('span', 'sw'));
      sw.style.background = agent.colour;
      who.appendChild(document.createTextNode(agent.name));
      if (agent.oracle) { add(who, el('span', 'oracle', 'ORACLE')).title = 'reads the hidden checklist'; }
      add(who, el('br'));
      add(who, el('span', 'k', meta.generators[Number(ids[1])]));
      for (var q = 0; q < rounds.length; q++) {
        var td = add(tr, el('td'));
        var c = cell[pairs[p] + ':' + rounds[q]];
        if (c === undefined) { td.textContent = '–'; continue; }
        for (var s = 0; s < seeds.length; s++) {
          var e = byKey[c * n + seeds[s]];
          if (e) { td.appendChild(episode(e, st, seeds.length > 1)); }
        }
      }
    }
  }

  function pager(box, list, pages) {
    box.textContent = '';
    var prev = add(box, el('button', '', '◀ previous'));
    prev.type = 'button';
    prev.disabled = state.page === 0;
    prev.addEventListener('click', function () { go(state.page - 1); });
    var first = list.length ? state.page * state.per + 1 : 0;
    var last = Math.min(list.length, (state.page + 1) * state.per);
    add(box, el('span', '', 'tasks ' + first + '–' + last + ' of ' + list.length + ' matching (' + tasks.length +
      ' in the run) · page ' + (state.page + 1) + ' of ' + pages));
    var next = add(box, el('button', '', 'next ▶'));
    next.type = 'button';
    next.disabled = state.page >= pages - 1;
    next.addEventListener('click', function () { go(state.page + 1); });
  }

  function go(page) {
    state.page = page;
    saveHash();
    render();
    var top = document.getElementById('pager-top');
    if (top && top.scrollIntoView) { top.scrollIntoView(); }
  }

  function screenFilled(main) {
    var cards = main.querySelectorAll('article.task');
    for (var i = 0; i < cards.length; i++) {
      if (cards[i].getBoundingClientRect().top >= window.innerHeight) { break; }
      if (!cards[i].hasAttribute('data-filled')) { return false; }
    }
    return true;
  }

  /* data-rendered-ms: the tasks on the first screen are drawn; data-first-screen-ms: and the images
     on it are loaded; data-page-ms: every task of the page is drawn (ms since navigation start). */
  function markFirstScreen(main) {
    if (!timing.first) { return; }
    timing.first = false;
    timing.rendered = Math.round(performance.now());
    document.documentElement.setAttribute('data-rendered-ms', String(timing.rendered));
    var visible = [];
    var images = main.querySelectorAll('img');
    for (var i = 0; i < images.length; i++) {
      var box = images[i].getBoundingClientRect();
      if (box.top < window.innerHeight && box.bottom > 0) { visible.push(images[i]); }
    }
    var left = visible.length;
    function one() {
      left -= 1;
      if (left <= 0) {
        timing.firstScreen = Math.round(performance.now());
        document.documentElement.setAttribute('data-first-screen-ms', String(timing.firstScreen));
      }
    }
    if (!left) { left = 1; one(); return; }
    for (var j = 0; j < visible.length; j++) {
      if (visible[j].complete) { one(); } else {
        visible[j].addEventListener('load', one);
        visible[j].addEventListener('error', one);
      }
    }
  }

  function render() {
    var token = ++renderToken;
    var st = state;
    document.body.classList.toggle('full', st.text === 'full');
    document.body.classList.toggle('notext', st.text === 'none');
    var combos = shownCombos(st);
    var seeds = shownSeeds(st);
    var list = [];
    for (var i = 0; i < tasks.length; i++) { if (matches(tasks[i], st, combos, seeds)) { list.push(tasks[i]); } }
    var pages = Math.max(1, Math.ceil(list.length / st.per));
    if (st.page > pages - 1) { st.page = pages - 1; }
    pager(document.getElementById('pager-top'), list, pages);
    pager(document.getElementById('pager-bottom'), list, pages);
    var main = document.getElementById('tasks');
    main.textContent = '';
    if (!list.length) {
      add(main, el('p', 'empty', 'No task matches the filters.'));
      markFirstScreen(main);
      return;
    }
    var slice = list.slice(st.page * st.per, (st.page + 1) * st.per);
    var waiting = slice.length;
    slice.forEach(function (task) {
      var article = add(main, card(task, st, combos, seeds));
      loadTask(task, function () {
        if (token !== renderToken) { return; }
        grid(article, task, st, combos, seeds);
        waiting -= 1;
        if (timing.first && screenFilled(main)) { markFirstScreen(main); }
        if (waiting === 0 && !timing.page) {
          timing.page = Math.round(performance.now());
          document.documentElement.setAttribute('data-page-ms', String(timing.page));
        }
      });
    });
  }

  function fillTags() {
    var counts = {};
    var order = [];
    for (var i = 0; i < tasks.length; i++) {
      var col = tasks[i].col;
      if (!(col in counts)) { counts[col] = 0; order.push(col); }
      counts[col] += 1;
    }
    var select = form.elements.tag;
    for (var j = 0; j < order.length; j++) {
      var option = el('option', '', order[j] + ' (' + counts[order[j]] + ')');
      option.value = order[j];
      select.appendChild(option);
    }
  }

  function start() {
    form = document.getElementById('filters');
    if (!meta || !form) { return; }
    fillTags();
    applyHash();
    var typing = null;
    form.addEventListener('submit', function (event) { event.preventDefault(); });
    form.addEventListener('change', function () { state = readForm(); saveHash(); render(); });
    form.elements.q.addEventListener('input', function () {
      clearTimeout(typing);
      typing = setTimeout(function () { state = readForm(); saveHash(); render(); }, 200);
    });
    document.getElementById('tasks').addEventListener('click', function (event) {
      var target = event.target;
      while (target && target !== this && !(target.classList && target.classList.contains('clamp'))) { target = target.parentNode; }
      if (target && target !== this) { target.classList.toggle('open'); }
    });
    window.addEventListener('hashchange', function () {
      if (location.hash.replace(/^#/, '') === lastHash) { return; }
      applyHash();
      render();
    });
    render();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
}());
