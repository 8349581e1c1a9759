// The operator's console, and a party's board: it creates orders (the console) and moves them
// along through the JSON API, and stays live through one stream. The console watches every active
// order (GET /v1/stream: a snapshot, then status events); a restaurant's board watches that
// restaurant's orders (GET /v1/restaurants/{id}/stream) and assigns couriers; a customer's page
// watches that customer's orders, read only. A row keeps the highest version it has seen, so a
// late or repeated event is ignored.
(function () {
  'use strict';
  var oc = window.ordercast;
  var list = document.getElementById('orders');
  var empty = document.getElementById('empty');
  var count = document.getElementById('order-count');
  var announce = document.getElementById('announce');
  var conn = document.getElementById('conn');
  var form = document.getElementById('create');
  var createError = document.getElementById('create-error');
  // A party page names its party on the body; the console names none.
  var partyKind = document.body.dataset.partyKind || '';
  var partyId = document.body.dataset.partyId || '';
  var readOnly = document.body.dataset.readonly === 'true';
  // The console's token entry; a party page has none (it opens with ?token=).
  var root = document.getElementById('console');
  var signin = document.getElementById('signin');
  var signinWhy = document.getElementById('signin-why');
  // A party page's word on a refused token.
  var problem = document.getElementById('problem');

  // How long a finished order stays on screen, so the operator sees how it ended.
  var ENDED_LINGER_MS = 8000;

  var rows = new Map(); // order id -> {order, el}

  function next(status) {
    var i = oc.STAGES.indexOf(status);
    return i >= 0 && i < oc.STAGES.length - 1 ? oc.STAGES[i + 1] : '';
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function summary(details) {
    var parts = [];
    if (details && details.restaurant) parts.push(details.restaurant);
    if (details && details.items) parts.push(details.items + (details.items === 1 ? ' item' : ' items'));
    return parts.join(' · ');
  }

  function buildRow(id) {
    var li = el('li', 'order');
    li.dataset.orderId = id;
    var head = el('div', 'order-head');
    var link = el(partyKind ? 'span' : 'a', 'order-id', id);
    if (!partyKind) link.href = '/track/' + encodeURIComponent(id);
    var badge = el('span', 'badge');
    head.append(link, badge);
    var meta = el('div', 'order-meta');
    var actions = el('div', 'actions');
    var advance = el('button', 'advance');
    advance.type = 'button';
    var cancel = el('button', 'cancel danger', 'Cancel');
    cancel.type = 'button';
    var pick = el('select', 'pick');
    pick.setAttribute('aria-label', 'Status for order ' + id);
    oc.STAGES.concat(['cancelled']).forEach(function (s) {
      var o = el('option', '', oc.label(s));
      o.value = s;
      pick.append(o);
    });
    var set = el('button', 'set', 'Set');
    set.type = 'button';
    actions.append(advance, cancel, pick, set);
    if (partyKind === 'restaurant') {
      var courier = el('input', 'courier');
      courier.placeholder = 'courier id';
      courier.setAttribute('aria-label', 'Courier for order ' + id);
      var assign = el('button', 'assign', 'Assign');
      assign.type = 'button';
      actions.append(courier, assign);
      assign.addEventListener('click', function () { assignCourier(id, courier.value.trim()); });
    }
    var error = el('p', 'problem row-error');
    error.setAttribute('role', 'alert');
    error.hidden = true;
    li.append(head, meta);
    if (!readOnly) li.append(actions);
    li.append(error);

    advance.addEventListener('click', function () { change(id, next(rows.get(id).order.status)); });
    cancel.addEventListener('click', function () { change(id, 'cancelled'); });
    set.addEventListener('click', function () { change(id, pick.value); });
    return li;
  }

  function render(row) {
    var o = row.order, li = row.el;
    var ended = oc.terminal(o.status);
    li.dataset.status = o.status;
    li.dataset.version = String(o.version);
    li.dataset.courier = o.courier_id || '';
    var badge = li.querySelector('.badge');
    badge.textContent = oc.label(o.status);
    badge.dataset.status = o.status;
    var meta = summary(o.details);
    if (o.courier_id) meta = (meta ? meta + ' · ' : '') + 'courier ' + o.courier_id;
    li.querySelector('.order-meta').textContent =
      (meta ? meta + ' · ' : '') + 'updated ' + oc.formatTime(o.updated_at);
    if (readOnly) return finishRender(row, ended);
    var n = next(o.status);
    var advance = li.querySelector('.advance');
    advance.textContent = n ? 'Advance to ' + oc.label(n) : 'Advance';
    advance.disabled = ended || !n || row.busy;
    li.querySelector('.cancel').disabled = ended || row.busy;
    li.querySelector('.set').disabled = ended || row.busy;
    li.querySelector('.pick').disabled = ended || row.busy;
    if (n && !row.picked) li.querySelector('.pick').value = n;
    var assign = li.querySelector('.assign');
    if (assign) {
      assign.disabled = ended || row.busy;
      li.querySelector('.courier').disabled = ended || row.busy;
    }
    finishRender(row, ended);
  }

  function finishRender(row, ended) {
    var o = row.order;
    if (ended && !row.removeTimer) {
      row.removeTimer = setTimeout(function () { remove(o.id); }, ENDED_LINGER_MS);
    }
  }

  function remove(id) {
    var row = rows.get(id);
    if (!row) return;
    if (row.removeTimer) clearTimeout(row.removeTimer);
    row.el.remove();
    rows.delete(id);
    updateCount();
  }

  function updateCount() {
    var active = 0;
    rows.forEach(function (r) { if (!oc.terminal(r.order.status)) active++; });
    count.textContent = '(' + active + ')';
    empty.hidden = rows.size > 0;
  }

  // upsert shows an order's state unless the row already has a newer version.
  function upsert(o) {
    var row = rows.get(o.id);
    if (row && row.order.version >= o.version) {
      // Events carry no details: a row first seen through one learns them from the order.
      if (!row.order.details && o.details) {
        row.order.details = o.details;
        render(row);
      }
      return;
    }
    if (!row) {
      if (oc.terminal(o.status)) return; // an order that ended before we ever saw it
      row = { order: o, el: buildRow(o.id) };
      rows.set(o.id, row);
      list.prepend(row.el);
    } else {
      if (row.order.status !== o.status) row.picked = false; // a new status resets the choice
      row.order = Object.assign({}, row.order, o);
    }
    render(row);
    updateCount();
  }

  // applyEvent folds one event into its order's row: a status change, or a courier assignment
  // (kind courier, its status unchanged; no courier_id means unassigned).
  function applyEvent(ev) {
    var row = rows.get(ev.order_id);
    var base = row ? row.order : { id: ev.order_id, details: null, created_at: ev.at };
    if (row && row.order.version >= ev.seq) return;
    var change = { status: ev.status, version: ev.seq, updated_at: ev.at };
    if (ev.kind === 'courier') change.courier_id = ev.courier_id || '';
    upsert(Object.assign({}, base, change));
    if (!rows.has(ev.order_id)) return;
    announce.textContent = ev.kind === 'courier'
      ? 'Order ' + ev.order_id + (ev.courier_id ? ' is assigned to courier ' + ev.courier_id + '.' : ' has no courier.')
      : 'Order ' + ev.order_id + ' is now ' + oc.label(ev.status) + '.';
    if (!row) {
      oc.request('GET', '/v1/orders/' + encodeURIComponent(ev.order_id)).then(upsert, function (err) {
        showRowError(ev.order_id, err.message);
      });
    }
  }

  // snapshot replaces what the page shows with the server's current list: an array of orders on
  // the console's stream, {orders: […]} on a party's.
  function snapshot(data) {
    var orders = Array.isArray(data) ? data : (data.orders || []);
    var keep = new Set(orders.map(function (o) { return o.id; }));
    rows.forEach(function (row, id) {
      if (!keep.has(id) && !oc.terminal(row.order.status)) remove(id);
    });
    orders.slice().reverse().forEach(upsert); // oldest first, so the newest ends up on top
    updateCount();
  }

  function showRowError(id, text) {
    var row = rows.get(id);
    if (!row) return;
    var p = row.el.querySelector('.row-error');
    p.textContent = text;
    p.hidden = !text;
  }

  function change(id, status) {
    var row = rows.get(id);
    if (!row || !status) return;
    send(id, 'POST', '/status', { status: status, note: 'set in the console', expected_version: row.order.version });
  }

  function assignCourier(id, courier) {
    send(id, 'PUT', '/courier', { courier_id: courier || null, note: 'assigned on the board' });
  }

  // send makes one change of an order through the API, the row busy meanwhile, and shows the
  // order it answers with, or the API's refusal on the row.
  function send(id, method, path, body) {
    var row = rows.get(id);
    if (!row) return;
    row.busy = true;
    render(row);
    showRowError(id, '');
    oc.request(method, '/v1/orders/' + encodeURIComponent(id) + path, body)
      .then(function (res) {
        upsert(res.order);
      }, function (err) {
        showRowError(id, err.message);
        refusedCredential(err);
      })
      .then(function () {
        var r = rows.get(id);
        if (!r) return;
        r.busy = false;
        render(r);
      });
  }

  if (form) form.addEventListener('submit', function (e) {
    e.preventDefault();
    var data = new FormData(form);
    var details = {};
    var restaurant = String(data.get('restaurant') || '').trim();
    var items = Number(data.get('items'));
    if (restaurant) details.restaurant = restaurant;
    if (items > 0) details.items = items;
    var body = { details: details, note: 'created in the console' };
    var id = String(data.get('id') || '').trim();
    if (id) body.id = id;
    createError.hidden = true;
    oc.request('POST', '/v1/orders', body).then(function (o) {
      upsert(o);
      form.reset();
    }, function (err) {
      createError.textContent = err.message;
      createError.hidden = false;
      refusedCredential(err);
    });
  });

  list.addEventListener('change', function (e) {
    if (!e.target.classList.contains('pick')) return;
    var row = rows.get(e.target.closest('.order').dataset.orderId);
    if (row) row.picked = true;
  });

  // needToken shows the token entry instead of orders that cannot be watched: the page was served
  // without a credential, or the server refused the one it has (expired, revoked, a role that
  // may not watch every order).
  function needToken(err) {
    if (!signin) { // a party page: its token is the link's; say why it was refused
      oc.showConnection(conn, 'denied');
      if (err && err.message) {
        problem.textContent = err.message;
        problem.hidden = false;
        document.getElementById('orders-section').hidden = true;
      }
      return;
    }
    if (err && err.message) {
      signinWhy.textContent = err.message;
      signinWhy.hidden = false;
    }
    signin.hidden = false;
    document.getElementById('create-section').hidden = true;
    document.getElementById('orders-section').hidden = true;
    oc.showConnection(conn, 'denied');
    signin.querySelector('input[name="token"]').focus();
  }

  // A write refused for want of a credential offers the way in too (public tracking lets the
  // console watch without one, but never change anything).
  function refusedCredential(err) {
    if (err.status === 401 && signin) {
      signinWhy.textContent = err.message;
      signinWhy.hidden = false;
      signin.hidden = false;
    }
  }

  updateCount();
  if (document.getElementById('handover')) {
    // A link handed a token over: it stays unused until the operator answers the question, and
    // leaves the address bar (and the history) now.
    history.replaceState(null, '', '/console');
    document.getElementById('create-section').hidden = true;
    document.getElementById('orders-section').hidden = true;
    oc.showConnection(conn, 'denied');
  } else if (root && root.dataset.needsToken === 'true') {
    needToken(null);
  } else if (document.body.dataset.refused === 'true') {
    // The server refused the token the link handed over, and says why on the page: nothing
    // runs, and the token leaves the address bar.
    history.replaceState(null, '', location.pathname);
    oc.showConnection(conn, 'denied');
  } else {
    // The stream's credential is its HttpOnly cookie, whose path is this very path: an id's ':'
    // stays as it is, as in the page's own address, or the browser would not send it.
    var path = partyKind ? '/v1/' + partyKind + 's/' + encodeURIComponent(partyId).replace(/%3A/gi, ':') + '/stream' : '/v1/stream';
    oc.stream(path, {
      onState: function (s) { oc.showConnection(conn, s); },
      onDenied: needToken,
      events: { snapshot: snapshot, status: applyEvent, courier: applyEvent }
    });
  }
})();
