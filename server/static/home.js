// The home page's list of orders in progress, kept live over the console's stream of every
// order (GET /v1/stream): the newest first, at most data-max of them, each with its restaurant
// and customer as the server names them (data-names, demo mode; else their ids) and its status.
// An order that ends leaves the list. The server lays out the list as it was when the page was
// made, which is what a browser without scripts shows.
(function () {
  'use strict';
  var oc = window.ordercast;
  var list = document.getElementById('home-orders');
  if (!list) return;
  var max = Number(list.dataset.max) || 20;
  var names = JSON.parse(list.dataset.names || '{}');
  var more = document.getElementById('home-more');
  var none = document.getElementById('home-none');
  var conn = document.getElementById('conn');
  var orders = new Map(); // id -> the order as the stream told it: every active one it knows
  var items = new Map();  // id -> its list item, kept while the order is listed

  function name(kind, id) {
    return names[kind + ':' + id] || id;
  }

  // who is whose order o is: its restaurant → its customer, as the server's list says it.
  function who(o) {
    var parts = [];
    if (o.restaurant_id) parts.push(name('restaurant', o.restaurant_id));
    if (o.customer_id) parts.push(name('customer', o.customer_id));
    return parts.join(' \u2192 ');
  }

  // newestFirst orders the list as the server does: by creation, newest first, then by id.
  function newestFirst(a, b) {
    return oc.timeMicros(b.created_at) - oc.timeMicros(a.created_at) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  }

  // item is o's list item, as the server lays one out: its link, whose order it is, its status.
  function item(o) {
    var li = items.get(o.id);
    if (!li) {
      li = document.createElement('li');
      li.dataset.orderId = o.id;
      var a = document.createElement('a');
      a.className = 'order-id';
      a.href = '/track/' + oc.segment(o.id);
      a.textContent = o.id;
      var badge = document.createElement('span');
      badge.className = 'badge';
      li.append(document.createElement('span'), ' ', badge);
      li.firstChild.append(a);
      items.set(o.id, li);
    }
    var whom = li.querySelector('.order-who');
    if (!whom) {
      whom = document.createElement('span');
      whom.className = 'order-who';
      li.firstChild.append(whom);
    }
    whom.textContent = who(o);
    whom.hidden = whom.textContent === '';
    var b = li.querySelector('.badge');
    b.dataset.status = o.status;
    b.textContent = oc.label(o.status);
    return li;
  }

  // render lays the list out from what the stream told: the newest max orders in progress.
  function render() {
    var shown = Array.from(orders.values()).sort(newestFirst).slice(0, max);
    var keep = new Set(shown.map(function (o) { return o.id; }));
    items.forEach(function (li, id) {
      if (!keep.has(id)) { li.remove(); items.delete(id); }
    });
    shown.forEach(function (o, i) {
      var li = item(o);
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    });
    more.hidden = orders.size <= max;
    none.hidden = orders.size > 0;
  }

  // snapshot replaces what the page knows with the server's list of orders in progress.
  function snapshot(data) {
    orders.clear();
    (Array.isArray(data) ? data : []).forEach(function (o) {
      if (!oc.terminal(o.status)) orders.set(o.id, o);
    });
    // The server laid out the items; the stream's are the same orders: keep their elements.
    Array.prototype.forEach.call(list.children, function (li) { items.set(li.dataset.orderId, li); });
    render();
  }

  // status takes one status event: an order that ended leaves; one not known yet (created
  // since) comes in, and its restaurant and customer, which an event does not carry, are asked.
  function status(ev) {
    var o = orders.get(ev.order_id);
    if (oc.terminal(ev.status)) {
      if (o) { orders.delete(ev.order_id); render(); }
      return;
    }
    if (o) {
      if (o.version >= ev.seq) return;
      o.status = ev.status;
      o.version = ev.seq;
    } else {
      o = { id: ev.order_id, status: ev.status, version: ev.seq, created_at: ev.at };
      orders.set(o.id, o);
      oc.request('GET', '/v1/orders/' + encodeURIComponent(o.id)).then(function (got) {
        var now = orders.get(got.id);
        if (!now) return; // it ended meanwhile
        now.restaurant_id = got.restaurant_id;
        now.customer_id = got.customer_id;
        now.created_at = got.created_at;
        render();
      }, function () { /* the row shows its id and status: enough for a link */ });
    }
    render();
  }

  oc.stream('/v1/stream', {
    onState: function (s, err) { oc.showConnection(conn, s, err); },
    events: { snapshot: snapshot, status: status }
  });
})();
