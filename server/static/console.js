// The operator's console, and a party's board: it creates orders (the console) and moves them
// along through the JSON API, and stays live through one stream. The console watches every active
// order (GET /v1/stream: a snapshot, then status events); a restaurant's board watches that
// restaurant's orders (GET /v1/restaurants/{id}/stream) and assigns couriers; a courier's page
// watches the orders assigned to that courier (GET /v1/couriers/{id}/stream) and offers its next
// step, picked up or delivered; a customer's page watches that customer's orders, read only. A
// row keeps the highest version it has seen, so a late or repeated event is ignored.
(function () {
  'use strict';
  var oc = window.ordercast;
  var list = document.getElementById('orders');
  var empty = document.getElementById('empty');
  var count = document.getElementById('order-count');
  // announce says what changed on the page's orders; prompt, a region of its own, asks about the
  // user's own tap ("Press again…"), so that a busy list's next change cannot overwrite the
  // question in the few seconds it stands.
  var announce = document.getElementById('announce');
  var prompt = document.getElementById('prompt');
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
  // The stage from which this page's token may no longer choose an order's courier or take it
  // away (a restaurant does both before the courier picks the order up, whose position shows
  // from then on, and who has the food), "never" where only dispatch assigns, or none (the
  // console's support, admin or system token, at any stage, as the server permits them:
  // party_pages.go's assignBefore): Assign and Unassign are offered only before it.
  var assignBefore = document.body.dataset.assignBefore || '';
  // The stage from which this page's token changes an order no more (a restaurant's part ends
  // at the pickup), or none: Cancel is offered only before it.
  var until = document.body.dataset.until || '';
  var isCourier = partyKind === 'courier';
  var isCustomer = partyKind === 'customer';
  // assigns: this page chooses an order's courier, or takes it away: a restaurant's board, and
  // the console, from which support reassigns an order whose courier cannot deliver it.
  var assigns = !partyKind || partyKind === 'restaurant';
  // offersLinks: this page gives a customer their tracking link again (linkControl): the console,
  // when its token may have one made (data-tracking-links, the server's
  // auth.Actor.PermitTrackingToken), or has none to judge by (an open server), as it offers every
  // status then (settable). Never a party's page: a restaurant would mint its customers' watch
  // access at will, and the server refuses it.
  var offersLinks = !partyKind && document.body.dataset.trackingLinks !== 'false';
  // keepsCancelled: on this page an order cancelled stays until its reader has seen it and
  // removes it (untilSeen): a courier's, who may be on the road to it, a customer's, whose
  // dinner it was, and who must learn that it is not coming, and why, and a restaurant's board,
  // whose kitchen would otherwise go on cooking an order that vanished in seconds, unexplained.
  var keepsCancelled = (isCourier && !readOnly) || isCustomer || (partyKind === 'restaurant' && !readOnly);
  // Changes say in their note which page made them (oc.pageNote).
  function pageNote(verb) { return oc.pageNote(verb, partyKind); }
  // A party's id as it is in its page's address, which its cookies' paths name.
  var partyPath = oc.segment(partyId);
  // Where an order's id links: a route of this page's (so its cookie goes along) that hands the
  // tracking page a credential from the page's token and sends the browser on to it
  // (GET /console/track/{id}, GET /{restaurants,couriers,customers}/{pid}/track/{id}).
  var trackVia = partyKind ? '/' + partyKind + 's/' + partyPath + '/track/' : '/console/track/';
  var loaded = false; // the first snapshot has come: until then, no "No active orders."
  var denied = false; // the stream was refused: the list says nothing

  // The page's waits. A browser test may shorten them (window.ordercastTimings, set before the
  // page's scripts run) rather than wait seconds of real time; no page sets it.
  var TIMINGS = Object.assign({ endedLingerMs: 8000, settleMs: 1000, confirmMs: 20000, announceHoldMs: 1000 }, window.ordercastTimings);
  // How long a finished order stays on screen, so the operator sees how it ended.
  var ENDED_LINGER_MS = TIMINGS.endedLingerMs;
  // How long a button that changed under a finger ignores clicks (settle): a second tap, or a
  // second Enter, meant for what it said, or for the order that was there, must not take what
  // is there now.
  var SETTLE_MS = TIMINGS.settleMs;
  // How long a button asking again ("Confirm pickup", "Confirm delivery", "Confirm cancel") waits
  // for its second press before it says what it said before, unless the keyboard's focus is on it
  // (holdQuestion). Twenty seconds: the question, said assertively, and the button's new name
  // took a screen reader most of the five it had.
  var CONFIRM_MS = TIMINGS.confirmMs;
  // How long what the live region says stands before another change may replace it (say).
  var ANNOUNCE_HOLD_MS = TIMINGS.announceHoldMs;

  var rows = new Map(); // order id -> {order, el, part} (buildRow)
  var rearranging = false; // a change of the list's rows is being made (rearrange)
  var laying = false; // a snapshot is laying out its rows (snapshot)

  // Where a new order's row goes. A restaurant's board is a kitchen's ticket rail, which kitchen
  // displays show oldest first: a new ticket goes at the bottom (by created_at), so an order
  // coming in moves no row under a cook's finger; the orders a courier has picked up, which are
  // no longer the kitchen's to act on (boardGroup), go below the rest. The console (whose form is
  // above the list) and a customer's page show the newest on top; a courier's page then sorts by
  // step (sortByStep). Rows a new one pushes down settle (rearrange).
  var oldestFirst = partyKind === 'restaurant';

  // A courier's page offers one button, the courier's next step, named for what a tap does, as
  // couriers' apps name it: the board's Advance, for the two statuses a courier sets
  // (auth/permit.go). Neither can be undone: after the pickup the restaurant may no longer cancel
  // and the customer sees the courier's position (the pickup is the courier's consent to being
  // followed), and a delivery ends the order. So each one's first tap asks again, in place (see
  // step), in the words of COURIER_ASKS.
  var COURIER_STEPS = { out_for_delivery: 'Pick up order', delivered: 'Complete delivery' };
  // COURIER_ASKS says, of each courier's step, what its button says while it waits for the second
  // tap (label), what the live region asks then (ask), and what it says once the question has
  // passed unanswered (lapsed), of order o, named by where the courier goes (orderName).
  // (stepAsks looks a step's question up.)
  var COURIER_ASKS = {
    out_for_delivery: {
      label: 'Confirm pickup',
      ask: function (o) { return 'Press again to confirm the pickup of ' + orderName(o, 'restaurant') + '.'; },
      lapsed: function (o) { return 'Pickup of ' + orderName(o, 'restaurant') + ' not confirmed.'; }
    },
    delivered: {
      label: 'Confirm delivery',
      ask: function (o) { return 'Press again to confirm the delivery of ' + orderName(o, 'customer') + '.'; },
      lapsed: function (o) { return 'Delivery of ' + orderName(o, 'customer') + ' not confirmed.'; }
    }
  };
  // STEP_ASKS says the same of the steps that ask first on the console and a restaurant's board:
  // a delivery, which ends the order for good, as a cancel does, and which the console set in one
  // press, where Cancel, and a courier's own delivery, ask again (a restaurant's token may not set
  // it: auth/permit.go). Advance to it asks in the button's place, as a courier's step does; Set
  // with it chosen asks as Cancel does (askSet), in these words.
  var STEP_ASKS = {
    delivered: {
      label: 'Confirm delivered',
      ask: function (o) { return 'Press again to mark ' + orderName(o) + ' delivered.'; },
      lapsed: function (o) { return orderNamed(o) + ' not marked delivered.'; }
    }
  };

  // stepAsks is what the step to status to asks before it is taken on this page (COURIER_ASKS,
  // STEP_ASKS), or null for a step taken at once.
  function stepAsks(to) {
    return (isCourier ? COURIER_ASKS : STEP_ASKS)[to] || null;
  }
  var CONFIRM_CANCEL_LABEL = 'Confirm cancel', CONFIRM_UNASSIGN_LABEL = 'Confirm unassign', CONFIRM_SET_LABEL = 'Confirm set';
  // CANCEL_REASONS are offered while a cancel is being confirmed: the one chosen is the change's
  // note, which the customer's tracking page and the courier's card show as the reason. Without
  // one the note says only where the change was made, as every page's change does.
  var CANCEL_REASONS = ['Out of stock', 'Kitchen too busy', 'Restaurant closing', 'Customer asked to cancel',
    'No courier available', 'Duplicate order'];

  // shortID is an order's id as the page's words say it: a generated id ("ord-" and 28 letters)
  // took a screen reader seconds to spell out in every sentence; its last four letters, beside
  // whose order it is (orderName), tell it from the others on a page, whose rows show it whole.
  function shortID(id) {
    return id.length <= 8 ? id : id.slice(-4);
  }

  // orderName is how the page's words name order o: "order 3f2a from Luigi's" by its restaurant,
  // or, by its customer, "order 3f2a for Ana" (partyName). whose is which: by default its
  // customer on a restaurant's board, whose orders are all the restaurant's, and its restaurant
  // elsewhere.
  function orderName(o, whose) {
    whose = whose || (partyKind === 'restaurant' ? 'customer' : 'restaurant');
    var who = partyName(o, whose);
    return 'order ' + shortID(o.id) + (who ? (whose === 'customer' ? ' for ' : ' from ') + who : '');
  }

  // partyName names order o's restaurant or customer (whose): by the name its details give, else
  // by its id, "restaurant luigis" (partyID): an order created with ids alone said nothing of
  // whose it was ("p-6 · Placed"); '' when it has neither.
  function partyName(o, whose) {
    return oc.detailString(o, whose).trim() || partyID(o, whose);
  }

  // partyID is order o's restaurant or customer (whose) named by its id ("customer ana-1"), or ''
  // when it has none, or when it is this page's own party, who is its reader.
  function partyID(o, whose) {
    var id = o[whose + '_id'];
    return id && !(partyKind === whose && id === partyId) ? whose + ' ' + id : '';
  }

  // orderNamed is orderName at the start of a sentence: "Order 3f2a from Luigi's".
  function orderNamed(o, whose) {
    var name = orderName(o, whose);
    return name.charAt(0).toUpperCase() + name.slice(1);
  }

  // gone says whether an order is done with as far as this page goes: it ended, or on a
  // courier's page it went to another courier (the courier's stream says so, then no more).
  function gone(o) {
    return oc.terminal(o.status) || (isCourier && o.courier_id !== partyId);
  }

  // stepLabel names the button that moves an order on to status n, or '' when this page offers
  // no such step: a courier takes only its own steps (and only on the orders it has: gone).
  function stepLabel(n) {
    if (isCourier) return COURIER_STEPS[n] || '';
    return n ? 'Advance to ' + oc.label(n) : '';
  }

  function next(status) {
    var i = oc.STAGES.indexOf(status);
    return i >= 0 && i < oc.STAGES.length - 1 ? oc.STAGES[i + 1] : '';
  }

  function maySet(status) {
    return !settable || settable.indexOf(status) >= 0;
  }

  // before says whether an order in status has not yet reached stage ('' for none).
  function before(status, stage) {
    return !stage || oc.STAGES.indexOf(status) < oc.STAGES.indexOf(stage);
  }

  function mayAssign(status) {
    return assignBefore !== 'never' && before(status, assignBefore);
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

  // repick offers in a row's picker what an order that moved to status may go on to, keeping the
  // status chosen in it while it is still offered: the operator's choice is not swapped for
  // another under the pointer. When what the picker shows changes all the same (the choice is no
  // longer offered), Set pauses (settleButtons), so that a click aimed at the old choice does not
  // apply the new one.
  function repick(row, pick, status) {
    var shown = pick.dataset.status === undefined ? null : pick.value; // null: the row is new
    fillPick(pick, status);
    if (shown && Array.prototype.some.call(pick.options, function (opt) { return opt.value === shown; })) {
      pick.value = shown;
    }
    if (shown !== null && pick.value !== shown) settleButtons(row, [row.part.set], 'choice');
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

  // setText sets e's text, unless it says that already.
  function setText(e, text) {
    if (e.textContent !== text) e.textContent = text;
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // summary is an order's line under its id, as the nodes to show: its restaurant (which a
  // courier's page shows as its pick-up instead), by its name, or by its id when its details
  // name none (not on its own board: partyID), its items, its courier (on the pages that do not
  // belong to one), each followed by " · ".
  function summary(o) {
    var parts = [], restaurant = oc.detailString(o, 'restaurant'), items = o.details && o.details.items;
    var restaurantID = restaurant ? '' : partyID(o, 'restaurant');
    if (restaurant && !isCourier) parts.push(oc.bdi(restaurant)); // its own direction, apart from the items
    else if (restaurantID && !isCourier) parts.push(restaurantID);
    if (Number.isInteger(items) && items > 0) parts.push(items + (items === 1 ? ' item' : ' items'));
    if (isCourier && !oc.terminal(o.status) && o.courier_id !== partyId) parts.push('given to another courier');
    else if (o.courier_id && !isCourier) parts.push('courier ' + courierName(o));
    return parts.flatMap(function (p) { return [p, ' · ']; });
  }

  // courierName names an order's courier: by the name its assignment gave, else by its id. A
  // board or the console, which assign couriers by id, show the id beside the name ("Omar
  // (c-7)"); a customer's page, whose reader has no use for an id, the name alone.
  function courierName(o) {
    if (!o.courier_name) return o.courier_id;
    var name = oc.isolate(o.courier_name);
    return partyKind === 'customer' ? name : name + ' (' + o.courier_id + ')';
  }

  // notes is what a row shows of an order's details beyond its summary and its stops: every
  // other one a page can show (oc.detailText), named, such as a customer's name for the bag, the
  // allergies a kitchen must know or the instructions a courier must. Each is {text, allergy,
  // id}: a detail whose name speaks of allergies (ALLERGY) comes first, and stands out
  // (drawNotes), so that neither a long instruction before it nor the line's limit (app.css)
  // hides it. A customer the details do not name is named by its id (id: true), first after the
  // allergies, "customer: ana-1": an order created with ids alone said nothing of whose it was.
  var ALLERGY = /allerg/i;
  function notes(o) {
    var d = o.details || {};
    // The courier's drop-off names the customer, and the customer's page is the customer's.
    var customerShown = !isCourier && partyKind !== 'customer';
    var note = function (k, text) {
      return text && { name: oc.detailName(k), value: text, text: oc.detailName(k) + ': ' + text, allergy: ALLERGY.test(k) };
    };
    var named = d.customer !== undefined && oc.detailText(d.customer) !== '';
    // An id is the API's own letters (A-Z, digits, . _ : -), with no direction to set apart.
    var byID = customerShown && !named && o.customer_id ? [Object.assign(note('customer', o.customer_id), { id: true })] : [];
    var shown = byID.concat(Object.keys(d).filter(function (k) {
      return !(k === 'restaurant' || k === 'items' && Number.isInteger(d[k]) || k === 'customer' && !customerShown);
    }).map(function (k) { return note(k, oc.detailText(d[k])); }).filter(Boolean));
    return shown.filter(function (n) { return n.allergy; }).concat(shown.filter(function (n) { return !n.allergy; }));
  }

  // drawNotes shows an order's notes (notes) in its row's line p, an allergy in bold, and hides
  // the line when there are none. It leaves a line that says the same alone.
  function drawNotes(p, shown) {
    var text = shown.map(function (n) { return n.text; }).join(' · ');
    p.hidden = text === '';
    if (p.textContent === text) return;
    p.replaceChildren.apply(p, shown.flatMap(function (n, i) {
      // The value in its own direction (bdi): an Arabic instruction keeps its words in order,
      // and the next note its place after it.
      var part = el(n.allergy ? 'strong' : 'span', n.allergy ? 'allergy' : undefined);
      part.append(n.name + ': ', n.id ? n.value : oc.bdi(n.value));
      return i === 0 ? [part] : [' · ', part];
    }));
  }

  // STOPS are where a courier goes for an order: the restaurant, then the customer, each with
  // the order's point for it, linked to a map a phone can navigate from.
  var STOPS = [
    { label: 'Pick up', point: 'pickup', name: function (o) { return oc.detailString(o, 'restaurant') || o.restaurant_id || 'the restaurant'; } },
    { label: 'Drop off', point: 'dropoff', name: function (o) { return oc.detailString(o, 'customer') || o.customer_id || 'the customer'; } }
  ];

  function renderStops(dl, o) {
    dl.textContent = '';
    STOPS.forEach(function (stop) {
      var item = el('div', 'stop');
      var dd = el('dd');
      var name = stop.name(o);
      var nameEl = el('span', 'stop-name', name);
      nameEl.dir = 'auto'; // a name given from outside, in its own direction
      dd.append(nameEl);
      var p = o[stop.point];
      if (p) {
        var at = p.lat.toFixed(5) + ', ' + p.lng.toFixed(5);
        var map = el('a', 'stop-map', at);
        map.href = 'https://www.openstreetmap.org/?mlat=' + p.lat + '&mlon=' + p.lng + '#map=18/' + p.lat + '/' + p.lng;
        map.target = '_blank';
        map.rel = 'noopener noreferrer';
        // Its name starts with the words it shows, which a voice command says (WCAG 2.5.3).
        map.setAttribute('aria-label', at + ': map of ' + name + ', in a new tab');
        dd.append(' ', map);
      }
      item.append(el('dt', '', stop.label), dd);
      dl.append(item);
    });
  }

  // buildRow makes order id's row: {el, part}, its li, and the parts of it that drawing it
  // changes, kept rather than searched for (querySelector) by each redraw of each row; a part
  // this page does not show is absent.
  function buildRow(id) {
    var part = {};
    var li = el('li', 'order');
    li.dataset.orderId = id;
    li.tabIndex = -1; // where the focus goes when the control that had it goes
    var head = el('div', 'order-head');
    var link = el('a', 'order-id', id);
    link.href = trackVia + oc.segment(id);
    var badge = part.badge = el('span', 'badge');
    head.append(link, badge);
    var meta = part.meta = el('div', 'order-meta');
    var noteLine = part.notes = el('p', 'order-notes');
    noteLine.hidden = true;
    var actions = el('div', 'actions');
    var advance = el('button', 'advance');
    advance.type = 'button';
    // Each button names its order to a screen reader, which reads a button alone when the
    // keyboard reaches it: "Cancel" says nothing of which.
    var cancel = el('button', 'cancel danger', 'Cancel');
    cancel.type = 'button';
    cancel.setAttribute('aria-label', 'Cancel order ' + id);
    cancel.dataset.wide = CONFIRM_CANCEL_LABEL; // its width whichever it says (app.css)
    cancel.hidden = !maySet('cancelled');
    var pick = el('select', 'pick');
    pick.setAttribute('aria-label', 'Next status for order ' + id);
    // In the picker's place while a cancel is being confirmed (showCancel): why, if the one
    // cancelling says. Its reasons come with the question (askCancel): seven options in each of
    // a board's 2,000 rows, where no cancel is being confirmed, were a quarter of its making.
    var why = el('select', 'cancel-why');
    why.setAttribute('aria-label', 'Why order ' + id + ' is cancelled');
    why.hidden = true;
    why.addEventListener('change', function () { armCancel(rows.get(id)); }); // time to confirm
    var set = el('button', 'set', 'Set');
    set.type = 'button';
    set.setAttribute('aria-label', 'Set the chosen status of order ' + id);
    set.dataset.wide = CONFIRM_SET_LABEL; // its width whichever it says (app.css)
    pick.addEventListener('change', function () { lapseSet(rows.get(id)); }); // another status: not the one asked about
    if (isCourier) actions.className = 'actions actions-courier';
    actions.append(advance);
    if (keepsCancelled) { // an order cancelled stays until it is seen (untilSeen, finishRender)
      var dismiss = part.dismiss = el('button', 'dismiss', 'Got it, remove');
      dismiss.type = 'button';
      dismiss.setAttribute('aria-label', 'Remove cancelled order ' + id + ' from the list');
      dismiss.hidden = true;
      onTap(dismiss, function () { remove(id); });
      // A customer's page has no actions (read only): the button stands alone under the row.
      if (readOnly) part.dismissLine = el('div', 'dismiss-line');
      (part.dismissLine || actions).append(dismiss);
    }
    if (!isCourier) actions.append(cancel, pick, why, set);
    Object.assign(part, { advance: advance, cancel: cancel, pick: pick, why: why, set: set });
    if (assigns) {
      // The field shows the order's courier until someone types in it; Assign needs a courier
      // (an empty one would take the courier away), and Unassign says that it does. Typing a
      // courier other than the order's brings out a field for the name the order's customer
      // will read ("Omar is on the way"), which the assignment sends when it is filled in.
      // Each field has a word of its own beside it (a placeholder is gone once typed over), which
      // its name, naming the order too, starts with (WCAG 2.5.3).
      var controls = el('div', 'courier-controls');
      var courier = part.courier = el('input', 'courier');
      courier.placeholder = 'courier id';
      courier.setAttribute('aria-label', 'Courier for order ' + id);
      var courierLabel = el('label', 'field');
      courierLabel.append(el('span', '', 'Courier'), courier);
      var nameField = part.name = el('input', 'courier-name');
      nameField.placeholder = 'optional';
      nameField.maxLength = 64; // the API's bound is 64 bytes; it says so of a longer name
      nameField.setAttribute('aria-label', 'Name of the courier for order ' + id + ', as its customer will read it');
      var nameLabel = part.nameLabel = el('label', 'field');
      nameLabel.append(el('span', '', 'Name'), nameField);
      nameLabel.hidden = true;
      var assign = part.assign = el('button', 'assign', 'Assign');
      assign.type = 'button';
      assign.setAttribute('aria-label', 'Assign the courier to order ' + id);
      var unassign = part.unassign = el('button', 'unassign set', 'Unassign');
      unassign.type = 'button';
      unassign.setAttribute('aria-label', 'Unassign the courier of order ' + id);
      unassign.dataset.wide = CONFIRM_UNASSIGN_LABEL; // its width whichever it says (app.css)
      controls.append(courierLabel, nameLabel, assign, unassign);
      actions.append(controls);
      courier.addEventListener('input', function () {
        var row = rows.get(id);
        row.courierTyped = true;
        render(row);
      });
      onTap(assign, function () {
        if (courier.value.trim()) assignCourier(id, courier.value.trim(), nameLabel.hidden ? '' : nameField.value.trim());
      });
      // Enter in either field assigns, as it submits a form: Assign, as if pressed from the
      // keyboard, which takes nothing while it is off.
      [courier, nameField].forEach(function (field) {
        field.addEventListener('keydown', function (e) {
          if (e.key !== 'Enter' || e.isComposing) return;
          e.preventDefault();
          if (!assign.disabled && !assign.hasAttribute('aria-disabled')) assign.click();
        });
      });
      onTap(unassign, function () { askUnassign(id); });
    }
    var error = part.error = el('p', 'problem row-error');
    error.setAttribute('role', 'alert');
    error.hidden = true;
    li.append(head);
    if (keepsCancelled) { // what became of an order cancelled while it stays (cancelledLine)
      var cancelled = part.cancelled = el('p', 'order-cancelled');
      cancelled.hidden = true;
      li.append(cancelled);
    }
    li.append(meta, noteLine);
    if (isCourier) li.append(part.stops = el('dl', 'stops'), part.hint = el('p', 'order-hint muted'));
    else if (partyKind === 'restaurant' && !readOnly) li.append(part.hint = el('p', 'order-hint muted'));
    if (!readOnly) li.append(part.actions = actions);
    if (part.dismissLine) li.append(part.dismissLine);
    // Its panel opening makes the row taller, and moves the rows after it: a change of the list.
    if (offersLinks) {
      var link = linkControl(id, function () { return rows.get(id).order; }, function (fn) { rearrange(fn, li); });
      link.box.prepend(link.ask);
      li.append(link.box);
    }
    li.append(error);

    onTap(advance, function () { step(id, advance); });
    onTap(cancel, function () { askCancel(id); });
    onTap(set, function () { askSet(id); });
    // A question asked by Advance, Cancel, Unassign or Set ends when the focus leaves it, or on
    // Escape (questionLeft), looked at once the focus has landed.
    [advance, cancel, why, set].concat(part.unassign || []).forEach(function (ctrl) {
      ctrl.addEventListener('focusout', function () { setTimeout(function () { questionLeft(id); }, 0); });
      ctrl.addEventListener('keydown', function (e) {
        if (e.key === 'Escape') questionLeft(id, true);
      });
    });
    return { el: li, part: part };
  }

  // onTap runs fn on a click of btn, unless btn is settling (settle): what is under the finger,
  // or under the keyboard's Enter, is not what it was aimed at. A row that only moved (settling
  // "moved") takes a press from the keyboard (a click of detail 0: Enter, Space) all the same:
  // the keyboard's focus stays on the button it was on, wherever the row goes, so the press is
  // meant for it; only a button whose own words changed ("words") makes the keyboard wait too.
  // Nor does a key held down press again: its repeats (keyHeld) are no press.
  // A press it ignores is said (prompt), and a tap marks the button (data-ignored) until it
  // settles, so that it shows it took nothing (app.css); a button that only moved looks as it
  // did: a list where every arrival greyed every button below it would flicker all day on a busy
  // board.
  function onTap(btn, fn) {
    btn.addEventListener('click', function (e) {
      var keyboard = e.detail === 0, settling = btn.dataset.settling;
      if (keyboard && keyHeld) {
        setText(prompt, 'The key is held down: nothing more was done.');
        return;
      }
      if (settling === undefined || keyboard && settling === 'moved') {
        fn();
        return;
      }
      btn.dataset.ignored = '';
      prompt.textContent = settling === 'moved' ? 'The list moved; nothing was done. Press again.'
        : settling === 'choice' ? 'Nothing was done: the status chosen just changed. Press again to set it.'
          : 'Nothing was done: the button just changed to ' + btn.textContent + '. Press again to do that.';
    });
  }

  // keyHeld says that the key down now is held: it repeats, and Enter's every repeat clicks the
  // button the focus is on, which would take the step it says next, and the next.
  var keyHeld = false;
  document.addEventListener('keydown', function (e) { keyHeld = e.repeat; }, true);
  document.addEventListener('keyup', function () { keyHeld = false; }, true);

  // showStep makes a row's step button say the step it takes now, and carry what a click sends:
  // the status (data-to) and the version of the order it was shown for (data-version), so that a
  // click takes exactly the step it said, and a stale one is refused by the version, never
  // turned into the next step. A button whose words change ignores clicks for a while (settle).
  function showStep(row, btn, to, label) {
    if (row.confirming && to !== row.confirming) stopConfirming(row); // the order moved on meanwhile
    var asks = stepAsks(to), own = label; // own: the step's own words
    if (row.confirming) label = asks.label;
    if (btn.textContent !== label) {
      if (btn.textContent !== '') settle(row); // not a row's first words: nobody aimed at none
      btn.textContent = label;
    }
    btn.setAttribute('aria-label', label + ': order ' + row.order.id);
    // A step that asks first asks in place, as Cancel does: the button keeps the width of the
    // longer of its two words whichever it says (data-wide, app.css), wherever it is laid out.
    if (asks) btn.dataset.wide = row.confirming ? own : asks.label;
    else delete btn.dataset.wide;
    btn.dataset.to = to;
    btn.dataset.version = String(row.order.version);
    btn.toggleAttribute('data-confirming', !!row.confirming);
  }

  // settle makes a row's buttons ignore clicks for SETTLE_MS (data-settling meanwhile, see
  // onTap): its step button's words changed under a finger or the keyboard's focus ("words"),
  // or, moved, the whole row moved (rearrange), each of its buttons now where another order's
  // was ("moved": a finger's aim, not the keyboard's).
  function settle(row, moved) {
    if (moved) settleButtons(row, row.el.querySelectorAll('button'), 'moved');
    else settleButtons(row, [row.part.advance]);
  }

  // settleButtons makes btns, a row's, ignore clicks for SETTLE_MS, as their words changed, or
  // with why "choice" as what they set changed (repick), or "moved" as they only moved: see
  // settle. Words or a choice changed stay so until they settle, whatever moves meanwhile.
  function settleButtons(row, btns, why) {
    Array.prototype.forEach.call(btns, function (btn) {
      var was = btn.dataset.settling;
      if (was === undefined || was === 'moved') btn.dataset.settling = why || 'words';
    });
    clearTimeout(row.settleTimer);
    row.settleTimer = setTimeout(function () {
      row.el.querySelectorAll('[data-settling]').forEach(function (btn) {
        delete btn.dataset.settling;
        delete btn.dataset.ignored;
      });
    }, SETTLE_MS);
  }

  // rearrange makes one change of the list's rows (change: an order added or removed, the
  // courier's sort, a snapshot's layout, a row redrawn), then settles every row whose place on
  // screen it changed: a finger, or a click, aimed at its buttons would land on another order's (a
  // row pushed down by a new one above it, pulled up by one removed, moved by a sort, or by a row
  // above it that grew or shrank; the list is a grid, two columns wide on a wide screen). A row
  // new to the list has no place to leave, so the first snapshot's layout settles nothing: nobody
  // aimed at a list not yet shown. The keyboard's focus stays where it was (moving an element in
  // the page drops it). Changes made within a change are part of it. A page without controls
  // (read only) measures nothing.
  // A change of one row only (from: the row's li; render, showRowError), which must change
  // nothing else, measures that row alone (settleMoved): every row near the screen (places),
  // twice, takes a few ms on a board of 2,000 (headless Chromium, a small VM). What
  // is left is the layout that reading a box after the change forces, which the next frame would
  // make anyway (twice, when the same task changes the page again: its count, its announcement).
  function rearrange(change, from) {
    if (rearranging || readOnly) return change();
    if (from && from.parentNode !== list) return change(); // not shown (yet): it moves nobody
    rearranging = true;
    var focused = list.contains(document.activeElement) ? document.activeElement : null;
    var before = from ? box(from) : places();
    try {
      change();
    } finally {
      rearranging = false;
    }
    if (focused && focused.isConnected && document.activeElement !== focused) {
      focused.focus();
      // A field the change turned off or hid (the order picked up while its courier was being
      // typed) takes no focus: its row does, rather than the page's body.
      var li = focused.closest('li.order');
      if (document.activeElement !== focused && li && li.isConnected) li.focus();
    }
    if (from) return settleMoved(from, before);
    // Only a row that had a place can have left it: the rows new to the list are not measured
    // (the first snapshot's are every row, and reading them would lay the whole board out at
    // once). All are read before any settles: a write between two reads makes the next one
    // lay the list out again.
    var now = places(before), moved = [];
    now.forEach(function (place, li) {
      if (place !== before.get(li)) moved.push(li);
    });
    moved.forEach(function (li) { settle(rows.get(li.dataset.orderId), true); });
  }

  // settleMoved settles the rows that a change of the row li moved, from li's box before it
  // (was) and after. The grid lays its rows out in their order, so a row's place depends on the
  // boxes of the rows before it alone: if li's box is as it was, no row moved. If only its height
  // changed, its line (a grid row, each row stretched to its line's height) grew or shrank: the
  // rows after it on its line (beside it: their top is its top) stayed, and every row on a later
  // line moved. If its width or place changed, so did the grid's columns: any row may have moved,
  // and every row settles. It reads a box or two however long the list is.
  function settleMoved(li, was) {
    var now = box(li);
    var settleFrom = function (from) {
      for (var r = from; r; r = r.nextElementSibling) settle(rows.get(r.dataset.orderId), true);
    };
    if (now.left !== was.left || now.top !== was.top || now.width !== was.width) return settleFrom(list.firstElementChild);
    // The rows beside it are read before any row settles: a read after a write lays out again.
    var later = null;
    if (now.height !== was.height) {
      later = li.nextElementSibling;
      while (later && box(later).top === now.top) later = later.nextElementSibling;
    }
    // Its own buttons moved within it (a line above them wrapped or went): each is now where
    // another of its buttons was, Cancel where Set was.
    if (now.actions !== was.actions) settle(rows.get(li.dataset.orderId), true);
    if (now.height !== was.height) settleFrom(later);
  }

  // box is where a row is in the list and how big it is, and where its buttons are in it, in
  // whole pixels; at is the list's box, when the caller has it already.
  function box(li, at) {
    at = at || list.getBoundingClientRect();
    var r = li.getBoundingClientRect();
    return {
      left: Math.round(r.left - at.left), top: Math.round(r.top - at.top),
      width: Math.round(r.width), height: Math.round(r.height), actions: actionsTop(li, r)
    };
  }

  // actionsTop is how far below the top of the row li (whose box is r) its buttons start: a line
  // above them that wraps moves them within the row.
  function actionsTop(li, r) {
    var actions = rows.get(li.dataset.orderId).part.actions;
    return actions ? Math.round(actions.getBoundingClientRect().top - r.top) : 0;
  }

  // places maps each row shown to where it is in the list and where its buttons are in it (box):
  // a row counts as moved when either changed. A row far off screen (far) counts as in no place:
  // nobody aims at it. With of (an earlier places), only the rows it holds that are still shown.
  function places(of) {
    var m = new Map();
    if (of && !of.size) return m; // nothing to read, nor to lay out for it
    var at = list.getBoundingClientRect();
    var place = function (li) {
      if (far(li)) return m.set(li, 'far');
      var b = box(li, at);
      m.set(li, b.left + ',' + b.top + ',' + b.actions);
    };
    if (of) of.forEach(function (was, li) { if (li.parentNode === list) place(li); });
    else Array.prototype.forEach.call(list.children, place);
    return m;
  }

  // far says whether the browser skips drawing the row li, as it does a row far off screen
  // (content-visibility: auto, app.css): reading a box inside it would make the browser lay it
  // out, and lay out the list again at the next read, about a millisecond a row; reading every
  // row's on a board of 2,000 took seconds. (A row is never far when the browser cannot tell.)
  function far(li) {
    var inside = li.firstElementChild;
    return !!inside && !!inside.checkVisibility && !inside.checkVisibility({ contentVisibilityAuto: true });
  }

  // step takes the step a row's button says (showStep): unless it is a step not yet confirmed
  // that asks first (a courier's pickup or delivery, the console's delivery: stepAsks), which
  // the button asks for first, in its place, while the question stands (holdQuestion). Its new
  // words settle it (showStep), so a double tap is no confirmation either.
  function step(id, btn) {
    var row = rows.get(id);
    var to = btn.dataset.to;
    if (!row || row.busy || !to) return;
    var asks = stepAsks(to);
    if (asks && row.confirming !== to) {
      row.confirming = to;
      holdQuestion(row, 'confirmTimer', function () { return [row.part.advance]; }, function () { lapseStep(row); });
      render(row);
      prompt.textContent = asks.ask(row.order);
      return;
    }
    stopConfirming(row);
    send(id, 'POST', '/status', { status: btn.dataset.to, note: pageNote('set'), expected_version: Number(btn.dataset.version) });
  }

  // lapseStep ends a step's question unanswered: the button says what it said before, and so
  // does the prompt, as the question was said: a screen reader's user heard "Press again", and
  // must hear that pressing again now only asks again.
  function lapseStep(row) {
    lapseAsked(row, row.confirming, stopConfirming);
  }

  // lapseAsked ends a row's question about moving its order to status (stepAsks: Advance's or
  // Set's) unanswered, stop forgetting it, and says so.
  function lapseAsked(row, status, stop) {
    var asks = stepAsks(status);
    if (!asks) return;
    stop(row);
    render(row);
    prompt.textContent = asks.lapsed(row.order);
  }

  // stopConfirming ends a step's question (step): row.confirming names the step asked about, ''
  // when none is.
  function stopConfirming(row) {
    clearTimeout(row.confirmTimer);
    row.confirming = '';
  }

  // holdQuestion keeps a question (a button asking for a second press: a courier's step, a
  // cancel) standing while the keyboard's focus is on one of its controls (the button, the
  // cancel's reasons), however long a screen reader takes to read it and the button's new name:
  // it ends when the focus leaves them, or on Escape (questionLeft), each by lapse. Without the
  // keyboard's focus there (a finger on a phone, which focuses nothing; a mouse's click, which
  // focuses the button unseen, and would leave a "Confirm cancel" standing for good under the
  // next slip), it stands CONFIRM_MS, then lapses; looked at again then with the keyboard's
  // focus on it, it waits as long again. timer names the row's field that holds its timer;
  // controls returns the question's controls.
  function holdQuestion(row, timer, controls, lapse) {
    clearTimeout(row[timer]);
    row[timer] = setTimeout(function () {
      var at = document.activeElement;
      if (controls().indexOf(at) >= 0 && at.matches(':focus-visible')) holdQuestion(row, timer, controls, lapse);
      else lapse();
    }, CONFIRM_MS);
  }

  // questionLeft ends, unanswered, a question of order id's row whose controls the keyboard's
  // focus left, or all its questions on Escape (escaped). It looks once the focus has landed: a
  // row that moves drops the focus for a moment, and rearrange gives it back.
  function questionLeft(id, escaped) {
    var row = rows.get(id);
    if (!row) return;
    var at = document.activeElement;
    if (row.confirming && (escaped || at !== row.part.advance)) lapseStep(row);
    if (row.confirmingCancel && (escaped || (at !== row.part.cancel && at !== row.part.why))) lapseCancel(row);
    if (row.confirmingUnassign && (escaped || at !== row.part.unassign)) lapseUnassign(row);
    if (row.confirmingSet && (escaped || at !== row.part.set)) lapseSet(row);
  }

  // askCancel cancels an order on the second press of its Cancel while the question stands
  // (holdQuestion): the first turns the button into "Confirm cancel" (announced), as a courier's
  // steps ask first. Cancel sits beside Advance, the button a kitchen taps all day, and a
  // cancelled order is as final as a delivered one: one slipped tap must not end a customer's
  // order. The button's new words settle it for a moment, so a double tap is not a confirmation
  // either.
  function askCancel(id) {
    var row = rows.get(id);
    if (!row || row.busy) return;
    if (!row.confirmingCancel) {
      row.confirmingCancel = true;
      if (!row.part.why.options.length) {
        row.part.why.append(new Option('No reason given', ''));
        CANCEL_REASONS.forEach(function (r) { row.part.why.append(new Option(r, r)); });
      }
      row.part.why.value = '';
      armCancel(row);
      render(row);
      prompt.textContent = 'Press again to cancel ' + orderName(row.order) + ', or choose why first.';
      return;
    }
    var why = row.part.why.value;
    stopConfirmingCancel(row);
    change(id, 'cancelled', why);
  }

  // armCancel (re)starts the time a cancel's question stands, unanswered (holdQuestion): from
  // the first tap, and again from each reason chosen, so that choosing one does not use that
  // time up.
  function armCancel(row) {
    if (!row || !row.confirmingCancel) return;
    holdQuestion(row, 'cancelTimer', function () { return [row.part.cancel, row.part.why]; }, function () { lapseCancel(row); });
  }

  // lapseCancel ends a cancel's question unanswered, and says so. The reasons go with the
  // question: a keyboard in them comes back to Cancel.
  function lapseCancel(row) {
    if (!row.confirmingCancel) return;
    var inReasons = row.part.why === document.activeElement;
    stopConfirmingCancel(row);
    render(row);
    if (inReasons) row.part.cancel.focus();
    prompt.textContent = orderNamed(row.order) + ' not cancelled.';
  }

  function stopConfirmingCancel(row) {
    clearTimeout(row.cancelTimer);
    row.confirmingCancel = false;
  }

  // askUnassign takes a board's order from its courier on the second press of Unassign while the
  // question stands (holdQuestion), as Cancel asks first: the courier may be on the way to the
  // restaurant already, and their page then says the order is no longer theirs. Unassign sits
  // beside Assign, under the courier's field a cook's finger goes to.
  function askUnassign(id) {
    var row = rows.get(id);
    if (!row || row.busy) return;
    if (!row.confirmingUnassign) {
      row.confirmingUnassign = true;
      holdQuestion(row, 'unassignTimer', function () { return [row.part.unassign]; }, function () { lapseUnassign(row); });
      render(row);
      prompt.textContent = 'Press again to take ' + orderName(row.order) + ' from courier ' + courierName(row.order) + '.';
      return;
    }
    stopConfirmingUnassign(row);
    assignCourier(id, '');
  }

  // lapseUnassign ends an unassign's question unanswered, and says so.
  function lapseUnassign(row) {
    if (!row.confirmingUnassign) return;
    stopConfirmingUnassign(row);
    render(row);
    prompt.textContent = orderNamed(row.order) + ' keeps its courier.';
  }

  function stopConfirmingUnassign(row) {
    clearTimeout(row.unassignTimer);
    row.confirmingUnassign = false;
  }

  // askSet sets the status chosen in a row's picker, on a press of Set; unless that status asks
  // first (a delivery: stepAsks), as Advance to it does, and as Cancel: then on the second press
  // while the question stands (holdQuestion), the first turning Set into "Confirm set". Choosing
  // another status ends the question (its status is no longer the one chosen), as does Escape,
  // or the keyboard's focus leaving Set (questionLeft). Set's new words settle it, so a double
  // tap is not a confirmation either.
  function askSet(id) {
    var row = rows.get(id);
    if (!row || row.busy) return;
    var to = row.part.pick.value, asks = stepAsks(to);
    if (asks && row.confirmingSet !== to) {
      row.confirmingSet = to;
      holdQuestion(row, 'setTimer', function () { return [row.part.set]; }, function () { lapseSet(row); });
      render(row);
      prompt.textContent = asks.ask(row.order);
      return;
    }
    stopConfirmingSet(row);
    change(id, to);
  }

  // lapseSet ends a Set's question unanswered, and says so, as lapseStep does Advance's.
  function lapseSet(row) {
    if (row) lapseAsked(row, row.confirmingSet, stopConfirmingSet);
  }

  // stopConfirmingSet ends a Set's question: row.confirmingSet names the status asked about, ''
  // when none is.
  function stopConfirmingSet(row) {
    clearTimeout(row.setTimer);
    row.confirmingSet = '';
  }

  // showSet makes a row's Set say whether it sets or asks first (askSet). A question whose status
  // can no longer be set (the order ended, a cancel asked), or is no longer the one chosen (the
  // order moved past it, and the picker gave way: repick), is over.
  function showSet(row, btn, usable) {
    if (!usable || row.part.pick.value !== row.confirmingSet) stopConfirmingSet(row);
    var asking = !!row.confirmingSet;
    showAsking(row, btn, asking ? CONFIRM_SET_LABEL : 'Set', asking
      ? 'Confirm setting order ' + row.order.id + ' to ' + oc.label(row.confirmingSet)
      : 'Set the chosen status of order ' + row.order.id, asking);
  }

  // showUnassign makes a row's Unassign say whether it unassigns or asks first (askUnassign).
  function showUnassign(row, btn, usable) {
    if (!usable) stopConfirmingUnassign(row);
    var asking = !!row.confirmingUnassign;
    showAsking(row, btn, asking ? CONFIRM_UNASSIGN_LABEL : 'Unassign',
      (asking ? 'Confirm unassigning' : 'Unassign') + ' the courier of order ' + row.order.id, asking);
  }

  // showAsking gives a button that asks first (Cancel, Unassign, Set) its words, label, and its name,
  // and marks whether its question stands (asking). Words that change settle it (settleButtons):
  // a second tap meant for what it said takes nothing.
  function showAsking(row, btn, label, name, asking) {
    if (btn.textContent !== label) {
      settleButtons(row, [btn]);
      btn.textContent = label;
    }
    btn.setAttribute('aria-label', name);
    btn.toggleAttribute('data-confirming', asking);
  }

  // showCancel makes a row's Cancel say whether it cancels or asks first (askCancel).
  function showCancel(row, btn, usable) {
    if (!usable) stopConfirmingCancel(row);
    var label = row.confirmingCancel ? CONFIRM_CANCEL_LABEL : 'Cancel';
    showAsking(row, btn, label, label + ' order ' + row.order.id, !!row.confirmingCancel);
    // The reasons take the picker's place, at its size: nothing in the row moves.
    row.part.pick.hidden = !!row.confirmingCancel;
    row.part.why.hidden = !row.confirmingCancel;
  }

  // render shows a row's order as it is now. A row that grows or shrinks (an order's details
  // learned, a longer step's words wrapping) moves the rows after it: a change of the list.
  function render(row) {
    rearrange(function () { draw(row); }, row.el);
  }

  function draw(row) {
    var o = row.order, li = row.el;
    var ended = gone(o);
    li.dataset.status = o.status;
    li.dataset.version = String(o.version);
    li.dataset.courier = o.courier_id || '';
    var badge = row.part.badge;
    badge.textContent = oc.label(o.status);
    badge.dataset.status = o.status;
    // The time in hours and minutes, whole in its title, as every time on the pages (timeElement).
    row.part.meta.replaceChildren.apply(row.part.meta, summary(o).concat('updated ', oc.timeElement(o.updated_at)));
    drawNotes(row.part.notes, notes(o));
    if (row.part.cancelled) drawCancelled(row);
    if (readOnly) return finishRender(row, ended);
    var n = next(o.status);
    var label = stepLabel(n);
    var canAdvance = !ended && label !== '' && maySet(n);
    var advance = row.part.advance;
    showStep(row, advance, canAdvance ? n : '', canAdvance ? label : 'Advance');
    enable(advance, canAdvance, row.busy);
    if (isCourier) return renderCourier(row, canAdvance, ended);
    var canCancel = !ended && before(o.status, until);
    showCancel(row, row.part.cancel, canCancel);
    if (row.part.unassign) showUnassign(row, row.part.unassign, !ended && mayAssign(o.status) && !!o.courier_id);
    enable(row.part.cancel, canCancel, row.busy);
    var pick = row.part.pick;
    if (pick.dataset.status !== o.status) repick(row, pick, o.status);
    enable(row.part.why, canCancel, row.busy);
    // Set waits while a cancel is being confirmed: the picker it sets from is not shown.
    var canSet = !ended && pick.value !== '' && !row.confirmingCancel;
    showSet(row, row.part.set, canSet);
    enable(pick, canSet, row.busy);
    enable(row.part.set, canSet, row.busy);
    var courier = row.part.courier;
    if (courier) {
      if (!row.courierTyped) courier.value = o.courier_id || '';
      var canAssign = !ended && mayAssign(o.status);
      // The name goes with a courier typed in, to name it as it is assigned: none while the
      // field is empty or names the order's courier already (the same courier again changes
      // nothing, its name included; unassign first to rename). Hidden, the name typed stays,
      // until the typing is over (courierTyped).
      var nameField = row.part.name, nameLabel = row.part.nameLabel;
      var typed = courier.value.trim();
      nameLabel.hidden = !row.courierTyped || !canAssign || typed === '' || typed === o.courier_id;
      if (!row.courierTyped) nameField.value = '';
      nameLabel.parentNode.toggleAttribute('data-naming', !nameLabel.hidden);
      enable(nameField, canAssign, row.busy);
      enable(courier, canAssign, row.busy);
      // The order's courier again would change nothing (same courier, same name): Assign is off.
      enable(row.part.assign, canAssign && typed !== '' && typed !== o.courier_id, row.busy);
      enable(row.part.unassign, canAssign && !!o.courier_id, row.busy);
    }
    if (partyKind === 'restaurant') showHint(row, !ended && !canAdvance ? waitingFor(o) : '');
    finishRender(row, ended);
  }

  // waitingFor is what a restaurant's row says when its next step is not the restaurant's (its
  // Advance off): at ready, whom the order waits for; out for delivery, who has it.
  function waitingFor(o) {
    var who = o.courier_id ? 'courier ' + courierName(o) : 'a courier';
    if (o.status === 'ready') return 'Waiting for ' + who + ' to pick it up.';
    return o.status === 'out_for_delivery' ? 'Picked up by ' + who + '.' : '';
  }

  // showHint says text on a row's hint line (order-hint), or hides the line when there is none.
  function showHint(row, text) {
    var hint = row.part.hint;
    hint.textContent = text;
    hint.hidden = text === '';
  }

  // renderCourier finishes a courier's row: its stops, and its one button, shown only when there
  // is a step to take; before the food is ready the row says when there will be. An order
  // cancelled while it lingers says so on top, and what to do (cancelledLine).
  function renderCourier(row, canAdvance, ended) {
    var o = row.order;
    renderStops(row.part.stops, o);
    var advance = row.part.advance;
    advance.hidden = !canAdvance;
    var before = oc.STAGES.indexOf(o.status) < oc.STAGES.indexOf('ready');
    showHint(row, !ended && before ? 'Pick it up once the restaurant has it ready.' : '');
    finishRender(row, ended);
  }

  // drawCancelled shows under a row's id what became of its order cancelled (cancelledLine), the
  // first sentence in bold, and offers to remove the row while it stays until seen (untilSeen).
  function drawCancelled(row) {
    var line = row.part.cancelled, words = cancelledLine(row);
    if (line.textContent !== sentencesText(words)) {
      line.replaceChildren.apply(line, words.flatMap(function (w, i) {
        return i === 0 ? [el('strong', '', w)] : [' '].concat(w);
      }));
    }
    line.hidden = words.length === 0;
    var seen = untilSeen(row);
    row.part.dismiss.hidden = !seen;
    if (row.part.dismissLine) row.part.dismissLine.hidden = !seen;
  }

  // sentencesText is the text of sentences (cancelledLine's), as a screen reader hears them.
  function sentencesText(sentences) {
    return sentences.map(function (w) {
      return [].concat(w).map(function (p) { return typeof p === 'string' ? p : p.textContent; }).join('');
    }).join(' ');
  }

  // untilSeen says whether an ended row stays until its reader removes it rather than for
  // ENDED_LINGER_MS (keepsCancelled): on a courier's page, an order cancelled while it was the
  // courier's. The courier may be on the road to it, or carrying its food, and is not looking at
  // the phone for the few seconds an ended row lingers; the order leaving the list unseen would
  // leave them driving to a pickup that is not there. On a customer's page, an order cancelled:
  // a dinner that vanished from the list in seconds, unexplained, leaves its customer waiting for
  // it. On a restaurant's board, an order cancelled while the kitchen still had it (before the
  // pickup) by someone else: the customer, support, dispatch; one the board cancelled itself,
  // its cook knows of. (A delivered order lingers as on every page: its customer has it.)
  function untilSeen(row) {
    if (!keepsCancelled || row.order.status !== 'cancelled') return false;
    if (partyKind === 'restaurant') return !row.cancelledHere && row.endedFrom !== 'out_for_delivery';
    return !isCourier || row.order.courier_id === partyId;
  }

  // cancelledLine is what a row says of its order cancelled (on a page that keepsCancelled), as
  // sentences, each a string or a sentence's parts (oc.customerCancelled); none for an order not
  // cancelled: that it was (the badge's one word is easily missed), why when the cancellation's
  // note gives a reason (oc.reason: not a page's own note, which says where it was made), and
  // what to do, in the tracking page's words for its reader: a courier, not to pick it up, or,
  // picked up, to ask the dispatcher (oc.courierCancelled; before the reason, as it matters most
  // on the road); a kitchen, what to do with the food (oc.kitchenCancelled); a customer, whom to
  // contact (oc.customerCancelled). Who cancelled it the page does not know.
  function cancelledLine(row) {
    if (row.order.status !== 'cancelled') return [];
    var why = oc.reason(row.endNote);
    var reason = why ? ['Reason: ' + why] : [];
    if (isCourier) return ['Order cancelled.', oc.courierCancelled(row.endedFrom === 'out_for_delivery')].concat(reason);
    if (partyKind === 'restaurant') return ['Order cancelled.', oc.kitchenCancelled(row.endedFrom)].concat(reason);
    var restaurant = oc.detailString(row.order, 'restaurant').trim();
    return ['Order cancelled.'].concat(reason, [oc.customerCancelled(restaurant, row.order.id)]);
  }

  function finishRender(row, ended) {
    var o = row.order;
    if (ended && !row.removeTimer && !untilSeen(row)) {
      row.removeTimer = setTimeout(function () { remove(o.id); }, ENDED_LINGER_MS);
    } else if (!ended && row.removeTimer) { // given back to this courier meanwhile
      clearTimeout(row.removeTimer);
      row.removeTimer = null;
    }
  }

  function remove(id) {
    var row = rows.get(id);
    if (!row) return;
    if (row.removeTimer) clearTimeout(row.removeTimer);
    clearTimeout(row.settleTimer);
    clearTimeout(row.learnTimer);
    stopConfirming(row);
    stopConfirmingSet(row);
    rearrange(function () {
      if (row.el.contains(document.activeElement)) {
        // The focus stays in the list: on a neighbouring order, or its heading.
        var to = row.el.nextElementSibling || row.el.previousElementSibling || heading;
        if (to === heading) heading.tabIndex = -1;
        to.focus();
      }
      row.el.remove();
    });
    rows.delete(id);
    updateCount();
  }

  // updateCount counts the orders the list holds: those in progress, and those that ended and stay
  // until their reader removes them (untilSeen), which are as much on the list as any; not a row
  // that lingers on its way out, which leaves the count as its order ends. (A customer's page
  // counted none of a cancelled order it kept showing: "Your orders (0)" above it.)
  function updateCount() {
    if (laying) return; // the snapshot counts once it has laid out every row
    var active = 0;
    rows.forEach(function (r) { if (!gone(r.order) || untilSeen(r)) active++; });
    // Each event counts again; text written as it was would still be laid out again.
    setText(count, loaded ? '(' + active + ')' : '');
    if (oldestFirst) showNewInTitle();
    setText(empty, loaded ? 'No active orders.' : 'Loading orders…');
    empty.hidden = rows.size > 0 || denied;
  }

  // showNewInTitle puts the count of a board's new orders (placed: nobody has confirmed them) in
  // the page's title, "(2 new) Restaurant r-1 · ordercast", which a tab, a window's bar and a
  // tablet's app switcher show: a new ticket goes at the bottom of the rail, out of sight on a
  // busy board, and its row's colour (app.css) is seen only once scrolled to.
  var baseTitle = document.title;
  function showNewInTitle() {
    var fresh = 0;
    rows.forEach(function (r) { if (r.order.status === 'placed') fresh++; });
    var title = (fresh ? '(' + fresh + ' new) ' : '') + baseTitle;
    if (document.title !== title) document.title = title;
  }

  // The kitchen's chime: a board sounds a short two-note tone when a new order comes in, once
  // its reader has turned the sound on (#sound, remembered in this browser). A browser plays no
  // sound on a page nobody has touched, so it starts off, and the tick that turns it on is the
  // touch that lets it play; turned on in an earlier visit, it plays from the page's first touch.
  // New orders in a burst (a stream back with what it missed) chime once.
  var soundToggle = document.getElementById('sound');
  var SOUND_KEY = 'ordercast.sound:' + (partyKind || 'console');
  var audio = null, chimedAt = -Infinity;
  function chime() {
    if (!soundToggle || !soundToggle.checked || !window.AudioContext) return;
    var now = performance.now();
    if (now - chimedAt < 2000) return;
    chimedAt = now;
    audio = audio || new AudioContext();
    var t = audio.currentTime;
    [[880, 0], [1320, 0.18]].forEach(function (note) {
      var osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = note[0];
      gain.gain.setValueAtTime(0.0001, t + note[1]);
      gain.gain.exponentialRampToValueAtTime(0.4, t + note[1] + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + note[1] + 0.4);
      osc.connect(gain).connect(audio.destination);
      osc.start(t + note[1]);
      osc.stop(t + note[1] + 0.45);
    });
  }
  if (soundToggle) {
    try {
      soundToggle.checked = localStorage.getItem(SOUND_KEY) === 'on';
    } catch (e) { /* storage off (a private window): the sound starts off */ }
    var unlock = function () {
      if (!soundToggle.checked || !window.AudioContext) return;
      audio = audio || new AudioContext();
      if (audio.state === 'suspended') audio.resume();
    };
    soundToggle.addEventListener('change', function () {
      unlock();
      try {
        localStorage.setItem(SOUND_KEY, soundToggle.checked ? 'on' : 'off');
      } catch (e) { /* not remembered */ }
    });
    document.addEventListener('pointerdown', unlock, { once: true });
    document.addEventListener('keydown', unlock, { once: true });
  }

  // A board keeps its screen on while it is shown (the Screen Wake Lock API, where the browser
  // has it), as a kitchen's display does: a tablet that dimmed and locked between two orders
  // showed the next one to nobody. The browser lets the lock go when the page is hidden; it is
  // taken again when shown. A refusal (a battery saver) leaves the screen to its settings.
  function keepAwake() {
    if (document.visibilityState !== 'visible') return;
    navigator.wakeLock.request('screen').catch(function () { /* refused: nothing more to do */ });
  }
  if (oldestFirst && !readOnly && navigator.wakeLock) {
    keepAwake();
    document.addEventListener('visibilitychange', keepAwake);
  }

  // What an event does not carry of an order: a row first seen through one learns it from the
  // order (which also corrects its created_at, see upsert). A status event says nothing of the
  // courier either: a row first seen through one learns the courier the order has, by its name.
  var LEARNED = ['details', 'restaurant_id', 'customer_id', 'pickup', 'dropoff', 'courier_id', 'courier_name'];

  // upsert shows an order's state unless the row already has a newer version. A new row, and on
  // a courier's page any change (it may sort the list), is a change of the list (rearrange), as
  // is, on a board, a row's created_at corrected (redated). fromEvent says o was made of an event
  // (applyEvent), which leaves out what the row is then to learn (LEARNED); an order from the
  // API says all there is, its courier's absence too.
  function upsert(o, fromEvent) {
    // The API leaves courier_id (and courier_name) out of an order with no courier: such an
    // order has none, which neither a row's courier before (an unassign the API answered before
    // its event) nor a late answer about an earlier version must give it.
    if (!fromEvent) o = Object.assign({ courier_id: '', courier_name: '' }, o);
    var row = rows.get(o.id);
    if (row && !fromEvent) row.unread = false; // it knows all there is now (learn)
    // An order's created_at never changes: one that differs from the row's is the order's own,
    // from the API, correcting the event's time that a row first seen through an event took
    // (applyEvent). A board, oldest first, then moves the row to its place; as it does a row
    // whose order the courier picked up (boardGroup).
    var redated = !!row && !!o.created_at && o.created_at !== row.order.created_at;
    if (row && row.order.version >= o.version) {
      var learned = LEARNED.filter(function (k) { return row.order[k] == null && o[k] != null; });
      learned.forEach(function (k) { row.order[k] = o[k]; });
      if (redated) row.order.created_at = o.created_at;
      if (redated && oldestFirst) rearrange(function () { insert(row); render(row); });
      else if (learned.length) render(row);
      return;
    }
    var added = !row;
    if (row && row.errorAt !== undefined && o.version > row.errorAt) {
      row.errorAt = undefined;
      row.errorUnanswered = false;
      showRowError(o.id, ''); // about a version the order has left (showChangeError)
    }
    // (An order that ended stays where it was for the while it lingers: it moves nothing.)
    var regrouped = !added && oldestFirst && !oc.terminal(o.status) && boardGroup(o) !== boardGroup(row.order);
    if (added) {
      if (gone(o)) return; // an order that ended (or left this courier) before we ever saw it
      row = buildRow(o.id);
      row.order = o;
      rows.set(o.id, row);
    } else {
      // The stage an order ended from: a courier's order cancelled once picked up is in the
      // courier's hands (cancelledLine).
      if (oc.terminal(o.status) && !oc.terminal(row.order.status)) row.endedFrom = row.order.status;
      row.order = Object.assign({}, row.order, o);
    }
    var placed = added || (redated && oldestFirst) || regrouped; // the row goes (again) to its place
    var show = function () {
      if (placed) insert(row);
      render(row);
      if (isCourier) sortByStep();
    };
    if (placed || isCourier) rearrange(show);
    else show();
    updateCount();
  }

  // insert puts a row in its place in the list: a new one on top, or on a restaurant's board
  // (oldestFirst) at its place by boardOrder, after the orders of its group created before it, which
  // for a new order is at the bottom of its group; a board's row whose created_at was corrected,
  // or whose order was picked up, moves there.
  function insert(row) {
    if (!oldestFirst) {
      list.prepend(row.el);
      return;
    }
    var after = function (li) { return li !== row.el && boardOrder(rows.get(li.dataset.orderId).order, row.order) > 0; };
    var last = list.lastElementChild === row.el ? row.el.previousElementSibling : list.lastElementChild;
    // The newest goes at the bottom at once: a snapshot of a busy board lays out many in a row.
    var later = last && after(last) ? Array.prototype.find.call(list.children, after) : null;
    list.insertBefore(row.el, later);
  }

  // boardGroup is 1 for an order its courier has picked up, which a board shows below the
  // others: from then on the restaurant acts on it no more (the board's data-until), and the
  // tickets the kitchen still works on stay on top.
  function boardGroup(o) {
    return o.status === 'out_for_delivery' ? 1 : 0;
  }

  // boardOrder compares where two orders go on a board (negative: a above b): by group, then
  // by created_at.
  function boardOrder(a, b) {
    return boardGroup(a) - boardGroup(b) || createdMicros(a) - createdMicros(b);
  }

  // createdMicros is an order's created_at in microseconds (oc.timeMicros), read once per order
  // and time: a row placed on a board is compared with every row after its place (insert), and a
  // parse each time made an order first seen through an event cost a board of 2,000 some 80 ms.
  var createdAt = new WeakMap(); // order -> {at, micros}
  function createdMicros(o) {
    var c = createdAt.get(o);
    if (!c || c.at !== o.created_at) createdAt.set(o, c = { at: o.created_at, micros: oc.timeMicros(o.created_at) });
    return c.micros;
  }

  // stepRank is where a courier's order goes in the list: what is in hand first (out for
  // delivery), then what waits to be picked up (ready), then the rest.
  var STEP_RANKS = { out_for_delivery: 0, ready: 1 };
  function stepRank(row) {
    var r = STEP_RANKS[row.order.status];
    return r === undefined ? 2 : r;
  }

  // sortByStep keeps a courier's list in stepRank order, newest first within a rank (the order
  // the rows came in: the sort is stable), as a change of the list: the rows it moves settle
  // and the keyboard's focus stays (rearrange).
  function sortByStep() {
    var before = Array.prototype.slice.call(list.children);
    var after = before.slice().sort(function (a, b) {
      return stepRank(rows.get(a.dataset.orderId)) - stepRank(rows.get(b.dataset.orderId));
    });
    if (after.every(function (li, i) { return li === before[i]; })) return;
    rearrange(function () { list.append.apply(list, after); });
  }

  // applyEvent folds one event into its order's row: a status change, or a courier assignment
  // (kind courier, its status unchanged; no courier_id means unassigned).
  function applyEvent(ev) {
    var row = rows.get(ev.order_id);
    // A courier's stream carries only the orders assigned to it, but for the event that takes
    // one away. A row first seen here takes the event's time as created_at until its order
    // comes (upsert).
    var base = row ? row.order : { id: ev.order_id, details: null, created_at: ev.at, courier_id: isCourier ? partyId : undefined };
    if (row && row.order.version >= ev.seq) return;
    // The note of the change that ends an order, which a row that lingers shows (cancelledLine).
    if (row && ev.kind !== 'courier' && oc.terminal(ev.status)) row.endNote = ev.note || '';
    // A change this page asked for (send) whose event came before the API's answer is the
    // user's own; a cancellation of its own a board does not keep until seen (untilSeen).
    var own = !!row && !!row.sending && row.sending(ev);
    if (own && ev.status === 'cancelled') row.cancelledHere = true;
    var change = { status: ev.status, version: ev.seq, updated_at: ev.at };
    if (ev.kind === 'courier') {
      change.courier_id = ev.courier_id || '';
      change.courier_name = ev.courier_name || '';
    }
    upsert(Object.assign({}, base, change), true);
    if (!rows.has(ev.order_id)) return;
    // A new order (placed, not on the list before) is said once it is read, by whose it is,
    // which its event does not say: on the pages whose reader chooses what is said
    // (announceModes); a courier's and a customer's hear every change of their own orders.
    var fresh = !row && loaded && !!announceModes && ev.kind !== 'courier' && ev.status === 'placed';
    if (!fresh) announceChange(ev.order_id, ev.kind === 'courier', rows.get(ev.order_id).order, own ? 'own' : 'other');
    if (fresh) chime();
    if (!row) rows.get(ev.order_id).unread = true;
    learn(ev.order_id, fresh);
  }

  // learn reads the whole order of a row first seen through an event (unread), which carries
  // none of what LEARNED names: the details a kitchen cooks by (allergies, items), the parties,
  // the stops. A read that fails (the network, a node away) is tried again on the backoff, and
  // at each of the order's events, until one succeeds; meanwhile the row says what it lacks, so
  // that nobody cooks an order whose allergies the board never showed. A new order is said
  // (fresh) once, when its first read ends, whatever the answer: by whose it is, if it came.
  function learn(id, fresh) {
    var row = rows.get(id);
    if (!row || !row.unread || row.learning) return;
    row.learning = true;
    clearTimeout(row.learnTimer);
    var done = function (r) {
      if (fresh && r) say('New ' + orderName(r.order) + '.', 'new');
    };
    oc.request('GET', '/v1/orders/' + encodeURIComponent(id)).then(function (o) {
      upsert(o); // clears unread
      var r = rows.get(id);
      if (r) {
        r.learning = false;
        r.learnWait = null;
        if (r.part.error.textContent === r.learnError) showRowError(id, '');
      }
      done(r);
    }, function (err) {
      var r = rows.get(id);
      done(r);
      if (!r) return;
      r.learning = false;
      refusedCredential(err);
      if (err.status === 401 || err.status === 403 || err.status === 404) {
        showRowError(id, err.message); // for good: another read would be refused as well
        return;
      }
      r.learnError = 'This order\'s details (allergies, items) could not be loaded: ' + oc.sentence(err.message) + ' Trying again.';
      showRowError(id, r.learnError);
      r.learnWait = r.learnWait || oc.backoff();
      r.learnTimer = setTimeout(function () { learn(id); }, r.learnWait.next());
    });
  }

  // announceChange tells screen readers what a change did to an order: a status change, or a
  // courier (un)assigned. Each change is announced once, by whichever brings it first: its event
  // on the stream (applyEvent), or the API's answer to a change this page made (send); the later
  // one finds the row already at its version and says nothing.
  // A courier, and a customer, hear what the row says of an order cancelled (cancelledLine). o is
  // the order as the change left it; kind is whose change it was (say).
  function announceChange(id, courierChange, o, kind) {
    var row = rows.get(id);
    // Another's cancellation is said as the reader's own changes are (kind "cancel"): a kitchen
    // that chose to hear only its own changes must still hear that an order it cooks is off.
    if (!courierChange && o.status === 'cancelled' && kind === 'other') kind = 'cancel';
    if (!courierChange && o.status === 'cancelled' && row && row.part.cancelled) {
      say(orderNamed(o) + ' is cancelled. ' + sentencesText(cancelledLine(row).slice(1)), kind);
      return;
    }
    say(orderNamed(o) + (!courierChange ? ' is now ' + oc.label(o.status) + '.'
      : isCourier ? (o.courier_id === partyId ? ' is assigned to you.' : ' is no longer yours.')
        : o.courier_id ? ' is assigned to courier ' + courierName(o) + '.' : ' has no courier.'), kind);
  }

  // What the live region says of the list's changes, on the console and a restaurant's board,
  // where its reader chooses (announceModes, the page's "Announce to screen readers" choices,
  // remembered in this
  // browser): the results of their own changes, the new orders and the cancellations ("mine",
  // at first), every change ("all"), or nothing ("off"). Every change of every order, by default, was fifty
  // sentences a minute on a busy console, over whatever else the reader was listening to. A
  // courier's and a customer's page, whose orders are all their own, say every change.
  var announceModes = document.getElementById('announce-mode'); // its radio buttons, by value
  var ANNOUNCE_KEY = 'ordercast.announce:' + (partyKind || 'console');
  var announceMode = 'all';
  if (announceModes) {
    var remembered = null;
    try {
      remembered = localStorage.getItem(ANNOUNCE_KEY);
    } catch (e) { /* storage off (a private window): nothing is remembered */ }
    var chosen = announceModes.querySelector('input[value="' + remembered + '"]') || announceModes.querySelector('input[value="mine"]');
    chosen.checked = true;
    announceMode = chosen.value;
    announceModes.addEventListener('change', function (e) {
      announceMode = e.target.value;
      try {
        localStorage.setItem(ANNOUNCE_KEY, announceMode);
      } catch (err) { /* not remembered */ }
    });
  }
  // MERGE_OVER is how many of other people's changes waiting together (a burst) are said one by
  // one; more are counted instead ("3 orders changed."), as a screen reader cannot keep up with
  // a burst read out whole. The reader's own changes are always said whole.
  var MERGE_OVER = 2;

  // say puts text in the page's live region, as kind says whose change it tells of: "own" (the
  // reader's, made on this page), "new" (an order new to the list), "cancel" (another's
  // cancellation), or other people's (the default), as the reader chose (announceMode). What it says stands ANNOUNCE_HOLD_MS before
  // another change may replace it: changes that come together (a stream back from the background
  // with what it missed, a snapshot's orders read) would each overwrite the last before a screen
  // reader had read it, and a customer hear that one order was delivered and never that another
  // was cancelled. What comes meanwhile waits, joined in the order it came (merged), and is said
  // when the time is up.
  var waiting = [], holding = null;
  function say(text, kind) {
    kind = kind || 'other';
    if (announceMode === 'off' || (announceMode === 'mine' && kind === 'other')) return;
    waiting.push({ text: text, kind: kind });
    if (!holding) sayWaiting();
  }

  function sayWaiting() {
    holding = null;
    if (!waiting.length) return;
    announce.textContent = merged(waiting);
    waiting = [];
    holding = setTimeout(sayWaiting, ANNOUNCE_HOLD_MS);
  }

  // merged is what is said of the announcements that waited together: each whole, but on a page
  // whose reader chooses what is said, more than MERGE_OVER not the reader's own, nor
  // cancellations, are counted ("2 new orders. 3 orders changed."), after those said whole.
  function merged(items) {
    var text = function (i) { return i.text; };
    var whole = function (i) { return i.kind === 'own' || i.kind === 'cancel'; };
    var others = items.filter(function (i) { return !whole(i); });
    if (!announceModes || others.length <= MERGE_OVER) return items.map(text).join(' ');
    var fresh = others.filter(function (i) { return i.kind === 'new'; }).length, changed = others.length - fresh;
    var counted = [];
    if (fresh) counted.push(fresh === 1 ? '1 new order.' : fresh + ' new orders.');
    if (changed) counted.push(changed === 1 ? '1 order changed.' : changed + ' orders changed.');
    return items.filter(whole).map(text).concat(counted).join(' ');
  }

  // snapshot replaces what the page shows with the server's current list: an array of orders on
  // the console's stream, newest first, {orders: […]} on a party's, most recently updated first.
  // It is one change of the list (rearrange): after a reconnect, the rows it moves settle.
  function snapshot(data) {
    var orders = Array.isArray(data) ? data : (data.orders || []);
    loaded = true;
    showListLimit(orders.length);
    var keep = new Set(orders.map(function (o) { return o.id; }));
    // Oldest first, so that the newest ends up on top; on a board, in the order they were
    // created, each then going at the bottom (insert).
    var laid = orders.slice().reverse();
    if (oldestFirst) laid.sort(boardOrder);
    // Counting the rows after each (updateCount) would count a snapshot of 2,000 two million times.
    laying = true;
    try {
      rearrange(function () {
        rows.forEach(function (row, id) {
          if (keep.has(id) || gone(row.order)) return;
          if (keepsCancelled) missed(id);
          else remove(id);
        });
        laid.forEach(function (o) { upsert(o); });
      });
    } finally {
      laying = false;
    }
    updateCount();
  }

  // The console's word on a snapshot that came full (list-limit): the stream's snapshot holds the
  // newest active orders only, as many as the server's limit (its data-limit, stream.SnapshotLimit),
  // and the oldest left out, the ones customers call about, were simply not there. An order left
  // out shows once it changes (its event); the word stays until a snapshot that holds them all.
  var listLimit = document.getElementById('list-limit');
  function showListLimit(n) {
    if (!listLimit) return;
    var full = n >= Number(listLimit.dataset.limit);
    if (full) setText(listLimit, 'The list holds the ' + n + ' newest active orders: older ones, still in progress, are not listed. ' +
      'Find one by its id, its customer or its restaurant.');
    listLimit.hidden = !full;
  }

  // missed learns what became of an order a snapshot no longer holds, on a page that keeps a
  // cancelled order until it is seen (keepsCancelled): a fresh snapshot (a stream that fell more
  // than the resume's bound behind) lists the orders in progress, so one that ended or left the
  // courier meanwhile is simply not there. Taken away unseen, an order cancelled while the page
  // was away would leave a courier driving to a pickup that is not there, and a customer waiting
  // for a dinner that is not coming (untilSeen): its events since the row's version are read and
  // applied as the stream would have brought them, so the row ends as it would have live. An
  // order the page may no longer read (given to another courier) leaves; one whose read failed
  // for want of a network stays, for the next snapshot to ask again.
  function missed(id) {
    var row = rows.get(id);
    oc.request('GET', '/v1/orders/' + encodeURIComponent(id) + '/events?after=' + row.order.version)
      .then(function (res) {
        res.events.forEach(applyEvent);
      }, function (err) {
        if (err.status === 403 || err.status === 404) remove(id);
        else refusedCredential(err);
      })
      .then(updateCount);
  }

  // showRowError shows why a row's change was refused, or with no text takes the line away: the
  // row grows or shrinks, which moves the rows after it (rearrange).
  function showRowError(id, text) {
    var row = rows.get(id);
    if (!row) return;
    var p = row.part.error;
    if (p.textContent === text && p.hidden === !text) return;
    rearrange(function () {
      p.textContent = text;
      p.hidden = !text;
    }, row.el);
  }

  // showChangeError shows why a change of the row's order was refused, or failed, until the order
  // moves past the version it was refused at (upsert): then it no longer says anything true. A
  // refusal of a change the board was out of date for ("order m-1 is at version 3, not 2"), or a
  // change that timed out ("it may have been made") stayed on the row after the stream had
  // shown what became of it. A change that found no server (unanswered: no network, or no answer
  // in time) is reworded once the page's stream hears the server again (reached): "The server
  // cannot be reached." stayed on the row, untrue, after the connection was back.
  function showChangeError(id, text, unanswered) {
    var row = rows.get(id);
    if (!row) return;
    row.errorAt = row.order.version;
    row.errorUnanswered = !!unanswered;
    showRowError(id, text);
  }

  // reached rewords the rows' errors of changes that found no server (showChangeError) once the
  // page's stream is live again: "The server cannot be reached." is no longer true, but the tap
  // still did nothing, and an error that went with it left a courier or an agent believing it
  // had. The stream, back from where it left off or with a fresh snapshot, shows what became of
  // each change: one that timed out and was made after all moves its order past the version the
  // error was shown at, which takes the error away (upsert), as it does a refusal's.
  function reached() {
    rows.forEach(function (row, id) {
      if (!row.errorUnanswered) return;
      row.errorUnanswered = false;
      showRowError(id, NOT_SENT);
    });
  }
  var NOT_SENT = 'Not done: the server could not be reached then. It can be now: try again.';

  // refresh reads a row's order again after a change made at the version the row showed was
  // refused for a later one (version_conflict): a board that was out of date (its stream away)
  // shows the order as it is now, and says what it is, in place of the refusal's versions, so that
  // whoever tapped sees why nothing was done before they tap again.
  function refresh(id) {
    oc.request('GET', '/v1/orders/' + encodeURIComponent(id)).then(function (o) {
      upsert(o);
      var row = rows.get(id);
      if (!row) return;
      var now = oc.label(row.order.status) + (row.order.courier_id && !isCourier ? ', courier ' + courierName(row.order) : '');
      showChangeError(id, 'Not done: this order changed meanwhile. It is now ' + now + '; check it, then try again.');
    }, function (err) {
      refusedCredential(err); // the refusal's words stay until the stream brings the change
    });
  }

  // change sets an order's status; its note is why, when the one changing it said (a cancel's
  // reason), else where it was made.
  function change(id, status, why) {
    var row = rows.get(id);
    if (!row || !status) return;
    send(id, 'POST', '/status', { status: status, note: why || pageNote('set'), expected_version: row.order.version });
  }

  function assignCourier(id, courier, name) {
    var body = { courier_id: courier || null, note: pageNote(courier ? 'assigned' : 'unassigned') };
    if (courier && name) body.courier_name = name;
    send(id, 'PUT', '/courier', body);
  }

  // send makes one change of an order through the API, the row busy meanwhile (its controls
  // ignore clicks, see enable), and shows the order it answers with, or the API's refusal on the
  // row.
  function send(id, method, path, body) {
    var row = rows.get(id);
    if (!row || row.busy) return;
    stopConfirmingCancel(row); // another change, or the cancel confirmed: the question is over
    stopConfirmingUnassign(row);
    stopConfirmingSet(row);
    row.busy = true;
    // Its event, if it comes before the answer, is the reader's own change (applyEvent).
    row.sending = function (ev) {
      return path === '/courier' ? ev.kind === 'courier' : ev.kind !== 'courier' && ev.status === body.status;
    };
    row.errorUnanswered = false;
    rearrange(function () { // one change: the row busy, its last refusal gone
      render(row);
      showRowError(id, '');
    }, row.el);
    oc.request(method, '/v1/orders/' + encodeURIComponent(id) + path, body)
      .then(function (res) {
        var r = rows.get(id);
        if (r && path === '/courier') r.courierTyped = false; // the field shows the courier again
        if (r && res.order.status === 'cancelled') r.cancelledHere = true; // not kept until seen
        var was = r ? r.order.version : Infinity;
        upsert(res.order);
        if (res.order.version > was) announceChange(id, path === '/courier', res.order, 'own');
      }, function (err) {
        showChangeError(id, err.message, err.status === 0); // 0: no answer (oc.request)
        refusedCredential(err);
        if (err.code === 'version_conflict') refresh(id);
      })
      .then(function () {
        var r = rows.get(id);
        if (!r) return;
        r.busy = false;
        r.sending = null;
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
    // The order's customer, whose page then shows it; the demo's form names the customer too.
    var customerId = String(data.get('customer_id') || '').trim();
    var customer = form.querySelector('select[name="customer_id"]');
    if (customerId && customer) details.customer = customer.options[customer.selectedIndex].textContent;
    var items = Number(data.get('items'));
    if (restaurant) details.restaurant = restaurant;
    if (items > 0) details.items = items;
    var body = { details: details, note: pageNote('created') };
    if (restaurantId) body.restaurant_id = restaurantId;
    if (customerId) body.customer_id = customerId;
    var id = String(data.get('id') || '').trim();
    if (id) body.id = id;
    createError.hidden = true;
    oc.request('POST', '/v1/orders', body).then(function (o) {
      // Said as the result of the reader's change, unless its event came first and said it.
      var known = rows.has(o.id);
      upsert(o);
      if (!known && rows.has(o.id)) say(orderNamed(o) + ' created.', 'own');
      form.reset();
    }, function (err) {
      createError.textContent = err.message;
      createError.hidden = false;
      refusedCredential(err);
    });
  });

  // Find looks orders up by what a caller knows, where the list holds the active orders only (at
  // most the snapshot's limit: showListLimit), and the address bar took only an order's exact id.
  // An order's id opens its tracking page through the console's route, as a row's link does, once
  // the order is found; a customer's or a restaurant's id lists that party's orders, ended ones
  // too (GET /v1/orders: a support, admin or system token's; partyOrders), the newest first, each linked. What
  // it found, or why nothing, is said in its status region (find-status), rendered empty from the
  // start, as a region that appears already filled is not reliably read.
  var find = document.getElementById('find');
  var findStatus = document.getElementById('find-status');
  var findResults = document.getElementById('find-results');
  var finding = 0; // searches made: the answer to one that is not the latest is dropped
  // The orders found have a column of Tracking links (foundRow), named for screen readers: its
  // buttons say what they are.
  if (find && offersLinks) {
    var linkHead = el('th');
    linkHead.scope = 'col';
    linkHead.append(el('span', 'sr-only', 'Tracking link'));
    findResults.querySelector('thead tr').append(linkHead);
  }
  if (find) find.addEventListener('submit', function (e) {
    e.preventDefault();
    var data = new FormData(find);
    var by = String(data.get('by')), id = String(data.get('id') || '').trim();
    if (!id) return;
    var mine = ++finding;
    findResults.hidden = true;
    setText(findStatus, 'Finding…');
    var latest = function (fn) {
      return function (v) { if (mine === finding) fn(v); };
    };
    if (by === 'order') {
      oc.request('GET', '/v1/orders/' + encodeURIComponent(id)).then(latest(function () {
        setText(findStatus, 'Opening order ' + id + '…');
        location.assign(trackVia + oc.segment(id));
      }), latest(function (err) {
        setText(findStatus, err.status === 404 ? 'No order ' + id + '.' : failedWords(err));
      }));
      return;
    }
    partyOrders(by, id).then(latest(function (found) {
      showFound(by + ' ' + id, found);
    }), latest(function (err) {
      setText(findStatus, failedWords(err));
    }));
  });

  // failedWords is what the console says of a request of Find's, or of a Tracking link's
  // (linkControl), that failed (err): refused for the console's token (403: a customer's orders
  // are listed, and tracking links made, for support, admin and system tokens only), no server
  // reached, or the API's word; a credential no longer accepted also offers the token entry
  // (refusedCredential). mayNot says what the token was refused ("look that up").
  function failedWords(err, mayNot) {
    refusedCredential(err);
    if (err.status === 403) return 'This console\'s token may not ' + (mayNot || 'look that up') + ': ' + oc.sentence(err.message);
    if (err.code === 'network') return 'The server cannot be reached; try again.';
    if (err.code === 'timeout') return 'The server did not answer in time; try again.';
    return oc.sentence(err.message);
  }

  // showFound lists the orders found of a party (whose: "customer ana-1"), or says there are none.
  function showFound(whose, found) {
    var n = found.orders.length;
    document.getElementById('find-results-heading').textContent = 'Orders of ' + whose;
    var rows = document.getElementById('find-rows');
    rows.replaceChildren.apply(rows, found.orders.flatMap(foundRow));
    findResults.hidden = n === 0;
    setText(findStatus, !n ? 'No orders of ' + whose + '.'
      : found.more ? 'The ' + n + ' newest orders of ' + whose + ', newest first; it has older ones.'
        : (n === 1 ? '1 order' : n + ' orders') + ' of ' + whose + ', newest first.');
  }

  // foundRow is one order found, as the table's rows: its id, linked as a row's is, its status and
  // when it was created, with its date (the orders found span days), and its Tracking link
  // (linkControl), whose link, once made, shows on a table row of its own under it, the table's
  // width: a caller's order is often found here, an ended one or one older than the list holds.
  function foundRow(o) {
    var tr = el('tr'), link = el('a', 'order-id', o.id), badge = el('span', 'badge', oc.label(o.status));
    tr.dataset.orderId = o.id;
    link.href = trackVia + oc.segment(o.id);
    badge.dataset.status = o.status;
    var parts = [link, badge, oc.timeElement(o.created_at, true)];
    var linkRow = null;
    if (offersLinks) {
      linkRow = el('tr', 'found-link');
      linkRow.hidden = true;
      var control = linkControl(o.id, function () { return o; }, function (fn) {
        fn();
        linkRow.hidden = control.box.querySelector('.link-panel').hidden && control.box.querySelector('.link-error').hidden;
      });
      var cell = el('td');
      cell.colSpan = findResults.querySelectorAll('thead th').length; // the table's width
      cell.append(control.box);
      linkRow.append(cell);
      parts.push(control.ask);
    }
    parts.forEach(function (part) {
      var td = el('td');
      td.append(part);
      tr.append(td);
    });
    return linkRow ? [tr, linkRow] : [tr];
  }

  // linkControl is what gives order id's customer their tracking link again, for an agent on a
  // call to paste into a chat or a message: its button, ask ("Tracking link"), asks the server for
  // a fresh tracking token (POST /v1/orders/{id}/tracking-token, logged with who asked), then box
  // shows the link (trackingLink) in a read-only field, with Copy, and when it expires; or why
  // there is none. Asked again, it makes another. order returns the order (what is said names
  // it); change makes a change of box's size (a row's moves the rows after it: rearrange). Its
  // buttons are a row's (onTap: not while the row settles), named with their order, as every
  // row's; what the agent's own tap made is said as their own changes are (say), and the field,
  // which a screen reader would spell out, token and all, takes no focus by itself.
  var linkSeq = 0; // the expiry lines' ids, which their fields name (aria-describedby)
  function linkControl(id, order, change) {
    var ask = el('button', 'link-ask', 'Tracking link');
    ask.type = 'button';
    ask.setAttribute('aria-label', 'Tracking link for order ' + id);
    var panel = el('div', 'link-panel');
    panel.hidden = true;
    var field = el('input', 'link-url');
    field.readOnly = true;
    field.spellcheck = false;
    field.setAttribute('aria-label', 'Link to the tracking page of order ' + id);
    field.addEventListener('click', function () { field.select(); }); // the whole link, to copy
    var label = el('label', 'field');
    label.append(el('span', '', 'Link'), field);
    var copy = el('button', 'link-copy', 'Copy');
    copy.type = 'button';
    copy.setAttribute('aria-label', 'Copy the tracking link of order ' + id);
    var expiry = el('p', 'link-expiry');
    expiry.id = 'link-expiry-' + (++linkSeq);
    field.setAttribute('aria-describedby', expiry.id);
    // What Copy did, in a region rendered empty with the panel, as one that appears filled is not
    // reliably read.
    var copied = el('p', 'link-copied');
    copied.setAttribute('role', 'status');
    panel.append(label, copy, expiry, copied);
    var error = el('p', 'problem link-error');
    error.setAttribute('role', 'alert');
    error.hidden = true;
    var box = el('div', 'link');
    box.append(panel, error);

    onTap(ask, function () {
      if (ask.hasAttribute('aria-disabled')) return; // asking already
      ask.setAttribute('aria-disabled', 'true');
      var o = order(); // as it is now: a row may be gone by the answer
      oc.request('POST', '/v1/orders/' + encodeURIComponent(id) + '/tracking-token').then(function (res) {
        var token = res.tracking_token || '';
        change(function () {
          field.value = trackingLink(id, token);
          expiry.replaceChildren.apply(expiry, token ? expiryWords(res.expires_at)
            : ['This server asks no token: anyone with the link can follow the order, and it does not expire.']);
          copied.textContent = '';
          panel.hidden = false;
          error.hidden = true;
        });
        say('Tracking link of ' + orderName(o) + ' shown below, with Copy' +
          (token ? '; it expires in ' + timeLeft(res.expires_at) : '') + '.', 'own');
      }, function (err) {
        var why = 'No tracking link made. ' + failedWords(err, 'have one made');
        change(function () {
          error.textContent = why;
          error.hidden = false;
        });
      }).then(function () { ask.removeAttribute('aria-disabled'); });
    });

    // Copy puts the link on the clipboard where the browser lets the page (navigator.clipboard: a
    // secure context, https or localhost, and a page in front); else it selects the link, for
    // the agent's own Ctrl+C.
    onTap(copy, function () {
      var byHand = function () {
        field.focus();
        field.select();
        copied.textContent = 'Selected: press Ctrl+C (\u2318C on a Mac) to copy it.';
      };
      copied.textContent = ''; // a second "Copied." is said again
      if (!navigator.clipboard || !navigator.clipboard.writeText) return byHand();
      navigator.clipboard.writeText(field.value).then(function () { copied.textContent = 'Copied.'; }, byHand);
    });
    return { ask: ask, box: box };
  }

  // trackingLink is order id's tracking page as its customer's link opens it, with token: the form
  // the link made with the order has (GET /track/{id}?token=…, which hands the token to the page's
  // cookie: docs/security.md; the README's quick start prints one), at this page's origin, since
  // the pages are served at the root of their host (docs/deploy.md). Without a token (an open
  // server signs none) the page alone, which anyone may open there.
  function trackingLink(id, token) {
    return location.origin + '/track/' + oc.segment(id) + (token ? '?token=' + encodeURIComponent(token) : '');
  }

  // expiryWords says when a tracking link whose token expires at iso stops working, as an agent
  // would tell the customer: how long from now (timeLeft), then when, "today" or "tomorrow"
  // at a time, or on a date further off (a token's TTL is the server's --tracking-ttl).
  function expiryWords(iso) {
    var at = new Date(iso), now = new Date(oc.serverNow()), tomorrow = new Date(now);
    tomorrow.setDate(now.getDate() + 1);
    var day = at.toDateString() === now.toDateString() ? 'today at '
      : at.toDateString() === tomorrow.toDateString() ? 'tomorrow at ' : '';
    return ['Expires in ' + timeLeft(iso) + ' (' + day, oc.timeElement(iso, !day), ').'];
  }

  // timeLeft is how long until iso, on the server's clock, in the unit a person says it in:
  // minutes under an hour and a half, hours under two days, then days.
  function timeLeft(iso) {
    var ms = Date.parse(iso) - oc.serverNow();
    var count = function (n, unit) { return n + ' ' + unit + (n === 1 ? '' : 's'); };
    if (ms < 90 * 60000) return count(Math.max(1, Math.round(ms / 60000)), 'minute');
    if (ms < 48 * 3600000) return count(Math.round(ms / 3600000), 'hour');
    return count(Math.round(ms / 86400000), 'day');
  }

  // partyOrders reads, for Find, the orders of a party (by: "customer" or "restaurant"; id):
  // resolves {orders, more}, the newest FIND_SHOWN, newest first, more saying it has older ones.
  // One page, listed newest first by the API, however many orders the party has: a restaurant's
  // run to thousands a day.
  var FIND_SHOWN = 100;
  function partyOrders(by, id) {
    var q = new URLSearchParams({ limit: String(FIND_SHOWN), order: 'newest' });
    q.set(by + '_id', id);
    return oc.request('GET', '/v1/orders?' + q.toString()).then(function (res) {
      return { orders: res.orders, more: Boolean(res.next) };
    });
  }

  // needToken shows the token entry instead of orders that cannot be watched: the page was served
  // without a credential, or the server refused the one it has (expired, revoked, a role that
  // may not watch every order).
  function needToken(err) {
    if (!signin) { // a party page: its token is the link's; say why it was refused, and what to do
      var ask = oc.sentence(document.body.dataset.askNewLink || 'ask for a new link.');
      oc.signedOut(oc.DEMO ? oc.SIGNED_OUT : ['The server refused this page\'s token.', oc.sentence(err && err.message), ask].filter(Boolean).join(' '), err);
      return;
    }
    denied = true;
    updateCount();
    if (err && err.message) {
      signinWhy.textContent = refusedWhy(err);
      signinWhy.hidden = false;
    }
    signin.hidden = false;
    hideSections();
    oc.showConnection(conn, 'denied', err);
    signin.querySelector('input[name="token"]').focus();
  }

  // A write refused for want of a credential offers the way in too (public tracking lets the
  // console watch without one, but never change anything). On a party page the credential is
  // the link's, which expired (or was revoked) meanwhile: the page stops (signedOut).
  // The demo's console is a page of the demo's own making, as a party page is: its token died
  // with the demo server (a restart), a reload makes a new one, and no token an operator could
  // enter would do; it stops as a party page does. An operator's console offers the entry, where
  // the focus goes, and which may be far above the row whose change was refused.
  function refusedCredential(err) {
    if (err.status !== 401) return;
    if (!signin || oc.DEMO) {
      oc.signedOut(oc.SIGNED_OUT, err);
      return;
    }
    signinWhy.textContent = refusedWhy(err);
    signinWhy.hidden = false;
    signin.hidden = false;
    signin.querySelector('input[name="token"]').focus();
  }

  // refusedWhy is what the console says of a refusal of its token: the API's reason, or, in demo
  // mode, whose tokens a restart voids, that a reload mends it.
  function refusedWhy(err) {
    return oc.DEMO ? oc.SIGNED_OUT : err.message;
  }

  // signedOut stops a party page (or the demo's console) whose token the server no longer takes,
  // saying why: no orders
  // nor controls that could only be refused, no stream, and the connection marked refused (the
  // location sharing stops too: courier.js). The focus goes to the reason. err is the refusal.
  function signedOut(why, err) {
    denied = true;
    updateCount();
    if (pageStream) pageStream.close();
    oc.showConnection(conn, 'denied', err);
    problem.textContent = why;
    problem.hidden = false;
    hideSections();
    var share = document.getElementById('share'); // a courier's: its posts carry the same token
    if (share) share.hidden = true;
    problem.tabIndex = -1;
    problem.focus();
  }

  // hideSections hides what needs the page's token: its orders, and on the console the new-order
  // form and Find.
  function hideSections() {
    ['create-section', 'find-section', 'orders-section'].forEach(function (id) {
      var section = document.getElementById(id);
      if (section) section.hidden = true;
    });
  }

  var pageStream = null; // the page's one stream, once it is opened
  if (!signin || oc.DEMO) oc.onSignedOut(signedOut);
  updateCount();
  // A token a link put in the address leaves the address bar (and the history) at once, whatever
  // became of it: taken, refused, or waiting for the operator's answer.
  if (new URLSearchParams(location.search).has('token')) history.replaceState(null, '', location.pathname);
  if (document.getElementById('handover')) {
    // A link handed a token over: it stays unused until the operator answers the question.
    hideSections();
    oc.showConnection(conn, 'denied');
  } else if (root && root.dataset.needsToken === 'true') {
    // The server says whether it refused a token (entered earlier, or handed over) or had none.
    needToken(root.dataset.tokenRefused === 'true' ? { tokenRefused: true } : null);
  } else if (document.body.dataset.refused === 'true') {
    // The server refused the token the link handed over (or had none to stream as), and says
    // why on the page: nothing runs.
    oc.showConnection(conn, 'denied', { tokenRefused: document.body.dataset.tokenRefused === 'true' });
  } else {
    // The stream's credential is its HttpOnly cookie, whose path is this very path.
    var path = partyKind ? '/v1/' + partyKind + 's/' + partyPath + '/stream' : '/v1/stream';
    pageStream = oc.stream(path, {
      onState: function (s, err) {
        oc.showConnection(conn, s, err);
        if (s === 'live') reached();
      },
      onDenied: needToken,
      events: { snapshot: snapshot, status: applyEvent, courier: applyEvent }
    });
  }
})();
