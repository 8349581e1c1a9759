// The live tracking page: loads the order's history, then follows its stream until it ends.
// Timeline rows are keyed by seq, so history and stream may overlap without duplicating a row.
(function () {
  'use strict';
  var oc = window.ordercast;
  var root = document.getElementById('track');
  var id = root.dataset.orderId;
  // The tracking cookie's path names the id as it is (oc.segment).
  var base = '/v1/orders/' + oc.segment(id);
  var conn = document.getElementById('conn');
  var statusLine = document.getElementById('status-line');
  var problem = document.getElementById('problem');
  var stepper = document.getElementById('stepper');
  var timeline = document.getElementById('timeline');
  // The courier's view of the page, opened from the courier's page, and the restaurant's, opened
  // from its board: their words are the courier's and the restaurant's (data-view, trackPage).
  var courierView = root.dataset.view === 'courier';
  var restaurantView = root.dataset.view === 'restaurant';
  // The page came from a tracking link the server refused (setTrackingCookie, server/auth.go).
  var linkRefused = new URLSearchParams(location.search).get('link') === 'refused';

  var events = new Map(); // seq -> event
  var latest = null;      // the event with the highest seq
  var courierSeq = 0;     // the seq of the newest courier event (apply)
  var shown = '';         // the status the status line shows
  var etaShown = '';      // the ETA the map shows, '' for none (showTitle)
  var stream = null;
  var map = null;         // the courier's map, once the order is known
  var restaurant = '';    // the restaurant its details name, once the order is known
  var heardUntil = null;  // when the stream last stopped hearing the server; null while it hears

  function showProblem(text) {
    problem.textContent = text;
    problem.hidden = !text;
  }

  function showDetails(details) {
    var dl = document.getElementById('details');
    dl.textContent = '';
    Object.keys(details || {}).forEach(function (k) {
      var text = oc.detailText(details[k]);
      if (text === '') return;
      var dt = document.createElement('dt');
      dt.textContent = oc.detailName(k);
      var dd = document.createElement('dd');
      dd.textContent = text;
      dd.dir = 'auto'; // the customer's words, in their own direction: an Arabic note ends at its left
      dl.append(dt, dd);
    });
    dl.hidden = dl.childElementCount === 0;
  }

  // showHeading names the order as its customer knows it: by its restaurant, when its details
  // name one (the convention the boards' pick-ups follow), "Your order from Luigi's", or to a
  // courier "Delivery from Luigi's"; to the restaurant, whose own name would tell it nothing, by
  // its customer, "Order for Ana", as its board names its orders; each with its id beneath, which
  // support asks for. An order whose details name none keeps "Order <id>".
  function showHeading(o) {
    restaurant = oc.detailString(o, 'restaurant').trim();
    var who = restaurantView ? oc.detailString(o, 'customer').trim() : restaurant;
    if (!who) return;
    var h1 = document.querySelector('main h1');
    h1.replaceChildren(restaurantView ? 'Order for ' : courierView ? 'Delivery from ' : 'Your order from ', oc.bdi(who));
    var ref = document.createElement('p');
    ref.className = 'order-ref';
    var idEl = document.createElement('span');
    idEl.className = 'order-id';
    idEl.textContent = id;
    ref.append('Order ', idEl);
    h1.after(ref);
  }

  // reachedAt maps each status to when the order reached it: the time of its first event in that
  // status (a courier event carries the status the order was in, and reaches nothing).
  function reachedAt() {
    var first = {};
    events.forEach(function (ev) {
      if (!first[ev.status] || ev.seq < first[ev.status].seq) first[ev.status] = ev;
    });
    var at = {};
    Object.keys(first).forEach(function (st) { at[st] = first[st].at; });
    return at;
  }

  // sr is text for a screen reader only (app.css's sr-only).
  function sr(text) {
    var span = document.createElement('span');
    span.className = 'sr-only';
    span.textContent = text;
    return span;
  }

  // renderStepper draws every forward stage, marks those reached (with the time each was
  // reached), the current one, and a cancelled order's last step.
  function renderStepper(reached) {
    var current = latest ? latest.status : '';
    var cancelled = current === 'cancelled';
    var rank = oc.STAGES.indexOf(current);
    if (cancelled) {
      // The furthest stage reached before the cancellation.
      rank = -1;
      events.forEach(function (ev) { rank = Math.max(rank, oc.STAGES.indexOf(ev.status)); });
    }
    var steps = oc.STAGES.map(function (s, i) {
      var state = i < rank || (i === rank && cancelled) ? 'done' : i === rank ? 'current' : 'todo';
      if (state === 'done' && !reached[s]) state = 'skipped';
      return { status: s, state: state, at: reached[s] };
    });
    // A cancelled order's stepper ends where it stopped: the stages it never reached, listed
    // above "Cancelled", read as if it was cancelled after delivery.
    if (cancelled) {
      steps = steps.filter(function (step) { return step.state !== 'todo'; });
      steps.push({ status: 'cancelled', state: 'current', at: reached.cancelled });
    }

    stepper.textContent = '';
    steps.forEach(function (step) {
      var li = document.createElement('li');
      li.className = 'step';
      li.dataset.status = step.status;
      li.dataset.state = step.state;
      if (step.state === 'current') li.setAttribute('aria-current', 'step');
      var name = document.createElement('span');
      name.className = 'step-name';
      name.textContent = oc.label(step.status);
      // The dot's colour says which steps are done, which a screen reader cannot see: it hears
      // so in words (the current step is aria-current; a skipped one says so on the screen).
      var done = { done: 'done', todo: 'not yet' }[step.state];
      if (done) name.append(sr(': ' + done));
      var when = document.createElement('span');
      when.className = 'step-time';
      if (step.at) {
        when.append(oc.timeElement(step.at));
      } else if (step.state === 'skipped') {
        when.textContent = 'skipped';
      }
      li.append(name, when);
      stepper.append(li);
    });
  }

  // showTitle names the tab by what the page shows first: while the map shows an ETA, the ETA
  // ("Arriving in about 4 min"), which a tab in the background then counts down; else the
  // order's status.
  function showTitle() {
    if (shown) document.title = (etaShown || oc.label(shown)) + ' · Order ' + id;
  }

  // showCancelled tells the reader of a cancelled order why, when the cancellation's note says
  // (oc.reason: not a page's own note, which says only where it was made), and what to do next:
  // a customer, whom to contact about a refund or a new order (oc.customerCancelled, as the
  // customer's own page says it); a courier, not to pick it up or, picked up, to ask their
  // dispatcher (oc.courierCancelled); the restaurant, not to go on with it, by the stage it was
  // cancelled at (oc.kitchenCancelled, the board's words), never to contact itself.
  function showCancelled() {
    var box = document.getElementById('cancelled');
    if (!latest || latest.status !== 'cancelled') {
      box.hidden = true;
      return;
    }
    var cancel = null, pickedUp = false;
    events.forEach(function (ev) {
      if (ev.status === 'cancelled' && ev.kind !== 'courier' && (!cancel || ev.seq < cancel.seq)) cancel = ev;
      if (ev.status === 'out_for_delivery') pickedUp = true;
    });
    // from: the stage the order was cancelled at, as far as this page saw its events.
    var from = null;
    events.forEach(function (ev) {
      if (cancel && ev.kind !== 'courier' && ev.seq < cancel.seq && (!from || ev.seq > from.seq)) from = ev;
    });
    var why = document.getElementById('cancel-reason');
    var text = oc.reason(cancel && cancel.note);
    why.textContent = text ? 'Reason: ' + text : '';
    why.hidden = !text;
    var next = document.getElementById('cancel-next');
    if (courierView) {
      next.textContent = oc.courierCancelled(pickedUp);
    } else if (restaurantView) {
      next.textContent = oc.kitchenCancelled(from && from.status);
    } else {
      next.replaceChildren.apply(next, oc.customerCancelled(restaurant, id));
    }
    box.hidden = false;
  }

  // addRow puts one event in the timeline, newest first, unless its seq is already there.
  function addRow(ev) {
    if (timeline.querySelector('li[data-seq="' + ev.seq + '"]')) return;
    var li = document.createElement('li');
    li.className = 'row';
    li.dataset.seq = String(ev.seq);
    li.dataset.status = ev.status;
    var t = oc.timeElement(ev.at);
    var what = document.createElement('span');
    what.className = 'row-status';
    // A courier event changes who carries the order, not its stage: say that, not the stage,
    // and name the courier by the name the assignment gave, if any.
    if (ev.kind === 'courier') {
      what.textContent = ev.courier_id ? 'Courier ' + (ev.courier_name ? oc.isolate(ev.courier_name) : ev.courier_id) + ' assigned' : 'Courier unassigned';
      li.dataset.kind = 'courier';
    } else {
      what.textContent = oc.label(ev.status);
    }
    li.append(t, what);
    // A note that is a reason a person wrote, as they wrote it; not the pages' own (oc.reason),
    // which say where a change was made ("set on the restaurant's board"): operators' words,
    // of no use to the order's customer, as the cancelled box leaves them out.
    if (oc.reason(ev.note)) {
      var note = document.createElement('span');
      note.className = 'row-note';
      note.textContent = ev.note;
      note.dir = 'auto';
      li.append(note);
    }
    var after = null; // the first row with a lower seq: the new row goes before it
    timeline.querySelectorAll('li[data-seq]').forEach(function (row) {
      if (!after && Number(row.dataset.seq) < ev.seq) after = row;
    });
    timeline.insertBefore(li, after);
  }

  // apply takes events from the history or the stream, in any order and with repeats. The map
  // hears of the newest courier event, wherever it came from: the order it was drawn from may
  // have been read before a reassignment that the history then held.
  function apply(list) {
    var moved = false;
    var courier = null; // a courier event newer than any before
    list.forEach(function (ev) {
      if (events.has(ev.seq)) return;
      events.set(ev.seq, ev);
      addRow(ev);
      if (!latest || ev.seq > latest.seq) { latest = ev; moved = true; }
      if (ev.kind === 'courier' && ev.seq > courierSeq) { courierSeq = ev.seq; courier = ev; }
    });
    if (courier && map) map.courier(courier.courier_id || '', courier.courier_name || '');
    if (!moved) return;
    var reached = reachedAt();
    renderStepper(reached);
    if (latest.status !== shown) {
      // The status line is a polite live region: screen readers announce what it says whenever
      // it changes, so it changes with the status only, never with a courier event.
      shown = latest.status;
      var name = document.createElement('span');
      name.textContent = oc.label(latest.status);
      var since = document.createElement('span');
      since.className = 'since';
      var t = oc.timeElement(reached[latest.status]);
      // An ended order was delivered at a time; one in progress has been in its status since.
      since.append(oc.terminal(latest.status) ? ' at ' : ' since ', t);
      statusLine.replaceChildren(name, since);
      statusLine.dataset.status = latest.status;
      showTitle();
      showCancelled();
    }
    if (map) {
      if (oc.terminal(latest.status)) map.end();
      else if (latest.status === 'out_for_delivery') map.show();
    }
  }

  // LINK_REFUSED is what the page says of a tracking link the server no longer takes: at load
  // (refused), and when its token expires while the page follows the order (the stream's
  // refusal), where the API's own words ("Token has expired.") named a token nobody was shown
  // and said nothing of what to do.
  var LINK_REFUSED = 'This tracking link was not accepted: it has expired, or it is not this order\'s. Ask whoever sent it for a new one.';

  // BOARD_REFUSED is what the restaurant's view says when the API finds no credential it takes
  // (401): the board's link signed none, for an order not the restaurant's or from a board
  // token no longer accepted, or the one it signed expired with the board's token. The
  // restaurant has no tracking link to open again, nor anyone who sent one.
  var BOARD_REFUSED = 'This order is not your restaurant\'s, or the board\'s sign-in has expired.';

  // POLL_WAIT_MS is how long the page's long poll (GET /v1/orders/{id}?wait=, see oc.stream's
  // polling) waits on the server for a change: it answers at once on one. While the order is out
  // for delivery RIDE_POLL_MS: a courier's position changes no version, so only a wait that ends
  // brings the newest, and the map calls a fix 20 s old lost.
  var POLL_WAIT_MS = 25000;
  var RIDE_POLL_MS = 5000;
  // SAVING_LOCATION_INTERVAL is how often the stream of a reader saving data (oc.savesData) sends
  // the courier's position (the API's location_interval).
  var SAVING_LOCATION_INTERVAL = '5s';

  // poll asks the server once for what the stream would have brought, waiting at most waitMs for
  // a change: the order (its version, the courier's newest position), then the events after the
  // page's last when there are any.
  function poll(waitMs) {
    var seq = latest.seq;
    return oc.request('GET', base + '?wait=' + waitMs / 1000 + 's&after_version=' + seq, undefined, waitMs + oc.requestTimeoutMs)
      .then(function (o) {
        if (o.version < seq) {
          // The order's history went back under the page (a database restored from an older
          // copy): what it shows by seq is of a history that is no more. Shown again as it is.
          location.reload();
          return;
        }
        if (map && o.location) map.update(o.location);
        if (o.version === seq) return;
        return oc.request('GET', base + '/events?after=' + seq).then(function (res) {
          apply(res.events);
          if (oc.terminal(latest.status)) stream.close();
        });
      });
  }

  // markStale says, once the page follows the order no more (its link refused), that the status
  // it shows is as of when it last heard the server, and may have changed since.
  function markStale() {
    if (statusLine.dataset.stale) return;
    statusLine.dataset.stale = 'true';
    var note = document.createElement('span');
    note.className = 'stale';
    note.textContent = ' (as of ' + oc.formatTime((heardUntil || new Date()).toISOString()) + '; it may have changed since)';
    statusLine.append(note);
  }

  function follow() {
    if (oc.terminal(latest.status)) {
      oc.showConnection(conn, 'ended');
      return;
    }
    stream = oc.stream(base + '/stream', {
      lastEventId: latest.seq,
      // A reader saving data gets the courier's newest position every 5 s, not every second:
      // a fifth of the bytes and the map's redraws, still well within the 20 s after which the
      // map says the courier is lost.
      locationInterval: oc.savesData() ? SAVING_LOCATION_INTERVAL : undefined,
      onState: function (s, err) {
        if (s === 'live' || s === 'polling') heardUntil = null;
        else if (!heardUntil) heardUntil = new Date();
        oc.showConnection(conn, s, err);
        if (map) map.connection(s);
      },
      // Why the stream cannot open now, when the server says something a customer can use (the
      // address's share of streams taken); '' once it opened.
      onWhy: showProblem,
      // A 204 ends the stream only once the page holds the order's end: otherwise it is not the
      // server's (a middlebox's), and the order goes on.
      finished: function () { return oc.terminal(latest.status); },
      poll: poll,
      pollWaitMs: function () { return latest.status === 'out_for_delivery' ? RIDE_POLL_MS : POLL_WAIT_MS; },
      onDenied: function (err) {
        if (!notYours(err)) {
          // The link's token expired (or was revoked) while the page followed the order: said as
          // at load, and what the page shows is no longer followed.
          showProblem(err.status === 401 && err.tokenRefused && !restaurantView ? LINK_REFUSED : refusal(err));
          markStale();
          return;
        }
        showProblem(refusal(err));
        // The courier follows the order no further: no route, no minutes to a drop-off.
        oc.showConnection(conn, 'ended');
        if (map) map.end();
        document.getElementById('map').hidden = true;
      },
      events: {
        // Positions carry no id: they never move the stream's Last-Event-ID.
        location: function (loc) { if (map) map.update(loc); },
        // A courier assigned or taken away is an event of its own (event: courier).
        courier: function (ev) { apply([ev]); },
        status: function (ev) {
          apply([ev]);
          // The server ends the stream after a terminal event; closing first keeps the browser
          // from asking again.
          if (oc.terminal(latest.status)) stream.close();
        }
      }
    });
  }

  // load reads the order and its history, then follows the stream. Only a refusal (401, 403), an
  // unknown order (404) or another request error is final, and only in the API's own words (its
  // JSON error, whose code an ApiError carries; one made of a bare status, 'http_403', is a
  // captive portal's or a proxy's page): anything else (a draining node's 503, 429, the network)
  // may pass, so it tries again with the stream's backoff, showing "reconnecting" meanwhile.
  var retry = oc.backoff();
  function final(err) {
    return err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429 &&
      String(err.code).indexOf('http_') !== 0;
  }
  // waiting is the timer of the next try while the first load has failed: the network coming
  // back, or the page coming back to the front (a phone unlocked), tries at once, as the stream
  // does, not at the end of a backoff up to 30 s long (a link opened in a dead spot).
  var waiting = null;
  function loadNow() {
    if (waiting === null || document.hidden) return;
    clearTimeout(waiting);
    waiting = null;
    load();
  }
  window.addEventListener('online', loadNow);
  document.addEventListener('visibilitychange', loadNow);
  function load() {
    Promise.all([oc.request('GET', base), oc.request('GET', base + '/events')]).then(function (res) {
      showHeading(res[0]);
      showDetails(res[0].details);
      map = window.ordercastMap(res[0], function () { return oc.request('GET', base + '/trail'); },
        function (eta) { etaShown = eta; showTitle(); },
        function () { return !!stream && stream.listening(); });
      apply(res[1].events);
      follow();
    }, function (err) {
      if (final(err)) {
        refused(err);
        return;
      }
      oc.showConnection(conn, 'reconnecting');
      waiting = setTimeout(function () { waiting = null; load(); }, retry.next());
    });
  }

  function refused(err) {
    // A link whose token the server refused set no cookie: the API then saw none, but the page
    // was given one all the same.
    oc.showConnection(conn, (err.status === 401 || err.status === 403) && !notYours(err) ? 'denied' : 'ended',
      { tokenRefused: err.tokenRefused || (err.status === 401 && linkRefused) });
    // An order that does not exist never ended: no badge says it did.
    conn.hidden = err.code === 'not_found';
    statusLine.textContent = '';
    // Nothing to show but the reason: no empty stepper or timeline under it.
    stepper.hidden = true;
    document.getElementById('timeline-section').hidden = true;
    // The tab says it too: a tab in the background kept "Order <id>" over a page that shows none.
    document.title = (err.code === 'not_found' ? 'No such order' : 'Cannot show') + ' \u00b7 Order ' + id;
    if (err.code === 'not_found') {
      showProblem('There is no order ' + id + '. Check the link you were given.');
    } else if (notYours(err) || restaurantView) {
      showProblem(refusal(err));
    } else if (err.status === 401 && (linkRefused || err.tokenRefused)) {
      // The link's token refused as it was handed over, or later, when it expired (its cookie
      // outlives it, so that the page is told so).
      showProblem(LINK_REFUSED);
    } else if (err.status === 401) {
      showProblem(oc.sentence(err.message) + ' Open the tracking link you were given (it ends in ?\u2060token=…).');
    } else {
      showProblem(refusal(err));
    }
  }

  // refusal says why the server refused the page's credential. A courier's credential reads the
  // order only while it is the courier's: refused (403), it went to another courier (notYours).
  // A courier who follows a link to an order already gone to another has no credential for it at
  // all (401: its page signed none), nor has one whose sign-in expired; neither has a customer's
  // tracking link to open, so neither is told to, nor is the restaurant (BOARD_REFUSED).
  function refusal(err) {
    if (restaurantView && err.status === 401) return BOARD_REFUSED;
    if (!notYours(err)) return oc.sentence(err.message);
    return err.status === 401 ? 'This order is no longer yours, or your sign-in has expired.' : 'This order is no longer yours.';
  }

  function notYours(err) {
    return courierView && (err.status === 403 || err.status === 401);
  }

  load();
})();
