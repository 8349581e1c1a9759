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
  var heading = document.getElementById('orders-heading');
  // The statuses this page's token may set (the server's permission table, auth/permit.go), or
  // every one when the page has none: a control that can only earn a 403 is not offered.
  var settable = document.body.dataset.maySet === undefined ? null : document.body.dataset.maySet.split(' ');
  // Changes say in their note which page made them.
  var where = partyKind === 'restaurant' ? "on the restaurant's board" : 'in the console';
  // A party's id as it is in its page's address: an id's ':' stays as it is, or the browser would
  // not send the page's cookies, whose path names the id as it is.
  var partyPath = encodeURIComponent(partyId).replace(/%3A/gi, ':');
  // Where an order's id links: a route of this page's (so its cookie goes along) that signs a
  // tracking token from the page's token and sends the browser on to the tracking page
  // (GET /console/track/{id}, GET /restaurants/{pid}/track/{id}, GET /customers/{pid}/track/{id}).
  var trackVia = partyKind ? '/' + partyKind + 's/' + partyPath + '/track/' : '/console/track/';
  var loaded = false; // the first snapshot has come: until then, no "No active orders."
  var denied = false; // the stream was refused: the list says nothing

  // How long a finished order stays on screen, so the operator sees how it ended.
  var ENDED_LINGER_MS = 8000;

  var rows = new Map(); // order id -> {order, el}

  function next(status) {
    var i = oc.STAGES.indexOf(status);
    return i >= 0 && i < oc.STAGES.length - 1 ? oc.STAGES[i + 1] : '';
  }

  function maySet(status) {
    return !settable || settable.indexOf(status) >= 0;
  }

  // fillPick offers in a row's picker the statuses an order in status may go on to that this page
  // may set: the later stages (one may skip stages, never go back), the next first and chosen.
  // Cancelling has its own button. With none (a restaurant's order that is ready waits for its
  // courier), the picker says so and Set is off.
  function fillPick(pick, status) {
    var i = oc.STAGES.indexOf(status);
    var later = i < 0 ? [] : oc.STAGES.slice(i + 1).filter(maySet);
    pick.textContent = '';
    later.forEach(function (s) {
      var o = el('option', '', oc.label(s));
      o.value = s;
      pick.append(o);
    });
    if (!later.length) {
      var none = el('option', '', 'No later status');
      none.value = '';
      pick.append(none);
    }
    pick.dataset.status = status;
  }

  // enable says whether a row's control can be used. One that cannot (the order ended, or the
  // status is not this page's to set) is disabled; one that only waits for the row's change to
  // be answered is marked aria-disabled and ignored meanwhile (send), so that it keeps the
  // keyboard's focus. A control that loses its use while it has the focus hands it to its row.
  function enable(ctrl, usable, busy) {
    if (!usable && document.activeElement === ctrl) ctrl.closest('.order').focus();
    ctrl.disabled = !usable;
    if (usable && busy) ctrl.setAttribute('aria-disabled', 'true');
    else ctrl.removeAttribute('aria-disabled');
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
    li.tabIndex = -1; // where the focus goes when the control that had it goes
    var head = el('div', 'order-head');
    var link = el('a', 'order-id', id);
    link.href = trackVia + encodeURIComponent(id).replace(/%3A/gi, ':');
    var badge = el('span', 'badge');
    head.append(link, badge);
    var meta = el('div', 'order-meta');
    var actions = el('div', 'actions');
    var advance = el('button', 'advance');
    advance.type = 'button';
    var cancel = el('button', 'cancel danger', 'Cancel');
    cancel.type = 'button';
    cancel.hidden = !maySet('cancelled');
    var pick = el('select', 'pick');
    pick.setAttribute('aria-label', 'Next status for order ' + id);
    var set = el('button', 'set', 'Set');
    set.type = 'button';
    actions.append(advance, cancel, pick, set);
    if (partyKind === 'restaurant') {
      // The field shows the order's courier until someone types in it; Assign needs a courier
      // (an empty one would take the courier away), and Unassign says that it does.
      var controls = el('div', 'courier-controls');
      var courier = el('input', 'courier');
      courier.placeholder = 'courier id';
      courier.setAttribute('aria-label', 'Courier for order ' + id);
      var assign = el('button', 'assign', 'Assign');
      assign.type = 'button';
      var unassign = el('button', 'unassign set', 'Unassign');
      unassign.type = 'button';
      unassign.setAttribute('aria-label', 'Unassign the courier of order ' + id);
      controls.append(courier, assign, unassign);
      actions.append(controls);
      courier.addEventListener('input', function () {
        var row = rows.get(id);
        row.courierTyped = true;
        render(row);
      });
      assign.addEventListener('click', function () {
        if (courier.value.trim()) assignCourier(id, courier.value.trim());
      });
      unassign.addEventListener('click', function () { assignCourier(id, ''); });
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
    var canAdvance = !ended && n !== '' && maySet(n);
    var advance = li.querySelector('.advance');
    advance.textContent = canAdvance ? 'Advance to ' + oc.label(n) : 'Advance';
    enable(advance, canAdvance, row.busy);
    enable(li.querySelector('.cancel'), !ended, row.busy);
    var pick = li.querySelector('.pick');
    if (pick.dataset.status !== o.status) fillPick(pick, o.status); // keeps a choice until then
    var canSet = !ended && pick.value !== '';
    enable(pick, canSet, row.busy);
    enable(li.querySelector('.set'), canSet, row.busy);
    var courier = li.querySelector('.courier');
    if (courier) {
      if (!row.courierTyped) courier.value = o.courier_id || '';
      enable(courier, !ended, row.busy);
      enable(li.querySelector('.assign'), !ended && courier.value.trim() !== '', row.busy);
      enable(li.querySelector('.unassign'), !ended && !!o.courier_id, row.busy);
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
    if (row.el.contains(document.activeElement)) {
      // The focus stays in the list: on a neighbouring order, or its heading.
      var to = row.el.nextElementSibling || row.el.previousElementSibling || heading;
      if (to === heading) heading.tabIndex = -1;
      to.focus();
    }
    row.el.remove();
    rows.delete(id);
    updateCount();
  }

  function updateCount() {
    var active = 0;
    rows.forEach(function (r) { if (!oc.terminal(r.order.status)) active++; });
    count.textContent = loaded ? '(' + active + ')' : '';
    empty.textContent = loaded ? 'No active orders.' : 'Loading orders…';
    empty.hidden = rows.size > 0 || denied;
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
    loaded = true;
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
    send(id, 'POST', '/status', { status: status, note: 'set ' + where, expected_version: row.order.version });
  }

  function assignCourier(id, courier) {
    send(id, 'PUT', '/courier', { courier_id: courier || null, note: (courier ? 'assigned ' : 'unassigned ') + where });
  }

  // send makes one change of an order through the API, the row busy meanwhile (its controls
  // ignore clicks, see enable), and shows the order it answers with, or the API's refusal on the
  // row.
  function send(id, method, path, body) {
    var row = rows.get(id);
    if (!row || row.busy) return;
    row.busy = true;
    render(row);
    showRowError(id, '');
    oc.request(method, '/v1/orders/' + encodeURIComponent(id) + path, body)
      .then(function (res) {
        var r = rows.get(id);
        if (r && path === '/courier') r.courierTyped = false; // the field shows the courier again
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
    var restaurantId = String(data.get('restaurant_id') || '').trim();
    var restaurant = String(data.get('restaurant') || '').trim();
    // The demo's form picks a restaurant by its name, which the order's details then carry.
    var chosen = form.querySelector('select[name="restaurant_id"]');
    if (chosen && chosen.selectedIndex >= 0) restaurant = chosen.options[chosen.selectedIndex].textContent;
    var items = Number(data.get('items'));
    if (restaurant) details.restaurant = restaurant;
    if (items > 0) details.items = items;
    var body = { details: details, note: 'created in the console' };
    if (restaurantId) body.restaurant_id = restaurantId;
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

  // needToken shows the token entry instead of orders that cannot be watched: the page was served
  // without a credential, or the server refused the one it has (expired, revoked, a role that
  // may not watch every order).
  function needToken(err) {
    denied = true;
    updateCount();
    if (!signin) { // a party page: its token is the link's; say why it was refused
      oc.showConnection(conn, 'denied');
      problem.textContent = ('The server refused this page\'s token. ' + oc.sentence(err && err.message)).trim();
      problem.hidden = false;
      document.getElementById('orders-section').hidden = true;
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
    // The stream's credential is its HttpOnly cookie, whose path is this very path.
    var path = partyKind ? '/v1/' + partyKind + 's/' + partyPath + '/stream' : '/v1/stream';
    oc.stream(path, {
      onState: function (s) { oc.showConnection(conn, s); },
      onDenied: needToken,
      events: { snapshot: snapshot, status: applyEvent, courier: applyEvent }
    });
  }
})();
