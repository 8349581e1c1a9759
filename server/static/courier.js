// A courier's page shares the phone's position while its toggle is on: the browser's geolocation
// (high accuracy) hands over each fix, which goes to POST /v1/couriers/{id}/location with the
// page's token. Within the server's budget (--location-rate, two a second by default): at most
// one post a second, a newer fix replacing one that waits its turn, none while one is on its way,
// and after a 429 or 503 none before its Retry-After. None either while none of the courier's
// orders is at the stage from which the server shows its courier (--location-from, which the
// page names on #share): the watch goes on, the newest fix waits, and the page says when sharing
// starts. A fix older than the server takes (--location-max-age, data-location-max-age) is not
// sent: the page asks the browser for a fresh one (refresh). The page shows when the last
// position was sent and how many orders it reached, and why one was not. It remembers that the
// courier turned sharing on, and turns it on again when the page is opened again (resume).
(function () {
  'use strict';
  var oc = window.ordercast;
  var toggle = document.getElementById('share-toggle');
  if (!toggle) return; // no tracker on this server, or a refused token
  var stateLine = document.getElementById('share-state');
  var last = document.getElementById('share-last');
  var lastAt = document.getElementById('share-at');
  var reach = document.getElementById('share-reach');
  var problem = document.getElementById('share-error');
  var note = document.getElementById('share-note');
  var courierId = document.body.dataset.partyId;
  var path = '/v1/couriers/' + oc.segment(courierId) + '/location';
  var orders = document.getElementById('orders');
  // The first stage at which the server shows the courier's position, and what the page says
  // until one of the courier's orders is there.
  var share = document.getElementById('share');
  var from = share.dataset.locationFrom || 'out_for_delivery';
  var NOT_YET = from === 'out_for_delivery' ? 'Sharing starts when you pick up an order.'
    : 'Sharing starts when one of your orders is ' + oc.label(from).toLowerCase() + '.';
  // The oldest a position's at may be when the server takes it (--location-max-age, in seconds
  // on #share), and how much younger than that a fix must be to be sent as it is: the post takes
  // a moment to arrive, and the page knows the server's clock only to a second or so.
  var MAX_AGE_MS = (Number(share.dataset.locationMaxAge) || 120) * 1000;
  var AGE_MARGIN_MS = Math.min(10000, MAX_AGE_MS / 4);
  // How long after the browser found no fresh position the page asks again, while it needs one.
  var REFRESH_RETRY_MS = 5000;

  // The least time between two posts: a map moves smoothly at one step a second, and the
  // server's default budget is two. A browser test may shorten it (window.ordercastTimings, as
  // console.js's waits).
  var TIMINGS = Object.assign({ locationIntervalMs: 1000, stillMs: 10000 }, window.ordercastTimings);
  var MIN_INTERVAL_MS = TIMINGS.locationIntervalMs;
  // A phone standing still (a red light, a lobby, a door) reports no fix, and a customer's map
  // that hears nothing for 20 s says the courier's location is lost: while a map shows the
  // courier, after STILL_MS without a newer fix the page asks the browser for one measured now
  // (refresh), which goes out with the time it was measured. A test may shorten it.
  var STILL_MS = TIMINGS.stillMs;
  var OFF = 'Off: customers see you on their map only while you share.';

  var watch = null; // the geolocation watch, while sharing
  var waiting = null; // the newest fix not yet sent
  var sending = false; // a post is on its way
  var notBefore = 0; // no post before this (Date.now())
  var timer = null; // wakes pump when notBefore has passed
  var live = false; // a post went through since sharing began
  var lastTaken = 0; // the time of the last position the server took, on its clock (ms)
  var newestFix = 0; // the time of the newest fix taken (its timestamp), 0 before the first
  var refreshing = null; // the fresh fix asked for (refresh), while it is awaited
  var refreshTimer = null; // asks again for a fresh fix after the browser found none
  var askedFix = null; // the last fix refresh got
  var refusedFix = null; // the last fix the server refused as it is (422), or showed no one (replace)
  var signedOut = false; // the server no longer takes the page's token (oc.onSignedOut)
  var stillTimer = null; // looks for a phone standing still (still), while sharing

  function say(text) {
    if (stateLine.textContent !== text) stateLine.textContent = text;
  }

  // showProblem writes only words that differ from what the line says: it is an alert, which a
  // screen reader reads out again whenever it is written, and with the server down the same
  // refusal came back every second.
  function showProblem(text) {
    if (problem.textContent !== text) problem.textContent = text;
    problem.hidden = !text;
  }

  function start() {
    if (!navigator.geolocation) {
      showProblem('This browser cannot tell where you are.');
      return;
    }
    if (!window.isSecureContext) {
      showProblem('A browser tells a page where you are only over HTTPS: open this page at its https:// address.');
      return;
    }
    showProblem('');
    live = false;
    newestFix = 0;
    toggle.setAttribute('aria-pressed', 'true');
    watch = navigator.geolocation.watchPosition(onFix, onFixError, { enableHighAccuracy: true, maximumAge: 0, timeout: 30000 });
    still();
    showState();
  }

  // still asks for a fresh fix once STILL_MS has passed since the newest one, while a map shows
  // the courier and nothing waits to be sent, and looks again STILL_MS later, while sharing.
  function still() {
    clearTimeout(stillTimer);
    stillTimer = setTimeout(function () {
      stillTimer = null;
      if (watch === null) return;
      if (shown() && !waiting && !sending && newestFix && Date.now() - newestFix >= STILL_MS) refresh();
      still();
    }, STILL_MS);
  }

  // stop ends the sharing: no fix is asked for or sent any more (one on its way still lands).
  function stop(why) {
    if (watch !== null) navigator.geolocation.clearWatch(watch);
    watch = null;
    waiting = null;
    if (timer) clearTimeout(timer);
    timer = null;
    refreshing = null;
    clearTimeout(refreshTimer);
    refreshTimer = null;
    clearTimeout(stillTimer);
    stillTimer = null;
    toggle.setAttribute('aria-pressed', 'false');
    say(why || OFF);
  }

  function onFix(fix) {
    if (watch === null) return;
    take(fix);
    pump();
  }

  // take makes fix the one that waits to be sent, unless the page has taken a newer one (a fresh
  // fix asked for that comes after the watch's next).
  function take(fix) {
    if (fix.timestamp < newestFix) return;
    newestFix = fix.timestamp;
    waiting = fix;
  }

  // tooOld says whether fix may not be sent as it is: older than the server takes (MAX_AGE_MS,
  // give or take the margin), or refused by the server as it is (422), one reason being an age
  // the page misjudged (the phone's clock set meanwhile).
  function tooOld(fix) {
    return fix === refusedFix || Date.now() - fix.timestamp > MAX_AGE_MS - AGE_MARGIN_MS;
  }

  // refresh asks the browser for a fix taken now (maximumAge 0), in place of one too old to send
  // (tooOld): the watch reports a fix only when the position changes, so a phone standing still
  // at the counter for minutes holds one older than the server takes by the time its order is
  // picked up. The fix held is not sent with a later time instead: at is when the phone measured
  // it. After an error (30 s without a fix is one), or a fix no newer than the one held, it asks
  // again REFRESH_RETRY_MS later, while the fix that waits is still too old (the watch may bring
  // a newer one meanwhile).
  function refresh() {
    if (refreshing) return;
    var mine = refreshing = {};
    navigator.geolocation.getCurrentPosition(function (fix) {
      if (refreshing !== mine) return; // stopped meanwhile
      refreshing = null;
      askedFix = fix;
      take(fix);
      // A browser that had no newer fix to give is asked again later, not at once.
      if (waiting && tooOld(waiting)) askAgainLater();
      pump();
    }, function (err) {
      if (refreshing !== mine) return;
      refreshing = null;
      onFixError(err);
      if (watch !== null) askAgainLater();
      showState();
    }, { enableHighAccuracy: true, maximumAge: 0, timeout: 30000 });
  }

  // askAgainLater has pump ask for a fresh fix again in REFRESH_RETRY_MS, and not before.
  function askAgainLater() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () { refreshTimer = null; pump(); }, REFRESH_RETRY_MS);
  }

  function onFixError(err) {
    if (watch === null) return;
    if (err.code === err.PERMISSION_DENIED) {
      stop(OFF);
      showProblem('This browser may not tell the page where you are: allow location for this site in its settings, then share again.');
      return;
    }
    // The watch goes on: a fix may come once the phone finds one.
    showProblem(err.code === err.TIMEOUT ? 'No position yet: still trying.'
      : 'Your position is unavailable (no GPS or network fix): still trying.');
  }

  // shown says whether one of the courier's orders is at the stage from which the server shows
  // its courier, or past it and not ended: what the page's list says of its rows (console.js).
  function shown() {
    var rank = oc.STAGES.indexOf(from);
    return Array.prototype.some.call(orders.querySelectorAll('li.order'), function (li) {
      var st = li.dataset.status;
      return li.dataset.courier === courierId && !oc.terminal(st) && oc.STAGES.indexOf(st) >= rank;
    });
  }

  // pump sends the fix that waits, when the budget allows and a map would show it, and says
  // what the sharing does now (showState).
  function pump() {
    if (watch === null) return;
    send();
    showState();
  }

  // showState says on the state line what the sharing does while it is on: nothing until an
  // order is on a map, or else whether the position goes through, and if not, what it waits for.
  // (Why a post did not go through the problem line says.)
  function showState() {
    if (watch === null) return;
    if (!shown()) say(NOT_YET);
    else if (live) say('Sharing your location.');
    else if (waiting && tooOld(waiting)) say('Sharing: getting your current position…');
    else if (!newestFix) say('Sharing: waiting for your first position…');
    else if (sending) say('Sharing: sending your position…');
    else say('Sharing: your position has not gone through yet.');
  }

  // send posts the fix that waits, if one may go now (pump).
  function send() {
    if (!shown()) {
      live = false; // "Sharing your location" again once one goes
      return;
    }
    if (sending || !waiting) return;
    if (tooOld(waiting)) {
      if (!refreshTimer) refresh(); // else it asks again when the timer says
      return;
    }
    var wait = notBefore - Date.now();
    if (wait > 0) {
      if (!timer) timer = setTimeout(function () { timer = null; pump(); }, wait);
      return;
    }
    var fix = waiting;
    waiting = null;
    sending = true;
    notBefore = Date.now() + MIN_INTERVAL_MS;
    var p = position(fix);
    oc.request('POST', path, p).then(function (res) {
      lastTaken = Date.parse(p.at);
      sent(res);
      // Taken, but shown to no customer as measured before the pickup (or the assignment): a
      // fresh fix in its place, as for one refused for its age (a phone standing still at the
      // counter reports none by itself).
      if (res && res.missed === 'fix_before_order_change' && watch !== null) {
        live = false; // the state line says it gets the current position
        replace(fix);
      }
    }, function (err) {
      refused(err);
      if (watch === null) return; // stopped meanwhile: nothing waits to be sent
      // A post the server could not take now goes again when it may, unless a newer fix has
      // come meanwhile: a phone standing still may report no other for a while. One it refused
      // as it is (422), maybe as too old, is not sent again: a fix from the watch waits, too old
      // (tooOld), for a fresh one in its place; a fresh one refused so waits for the watch's
      // next, rather than ask the phone again and again.
      if (retryable(err) && !waiting) waiting = fix;
      else if (err.status === 422) replace(fix);
    }).then(function () {
      sending = false;
      pump();
    });
  }

  // replace has fix, which the server would not take or show as it is, wait for a fresh one in
  // its place (tooOld asks the phone for it), unless it was a fresh one already (askedFix): then
  // the watch's next, when the phone moves, rather than ask the phone again and again.
  function replace(fix) {
    refusedFix = fix;
    if (!waiting && fix !== askedFix) waiting = fix;
  }

  // position is a fix as the API takes it: what the fix has of accuracy, heading and speed (a
  // phone standing still has no heading), and its time on the server's clock as well as the page
  // knows it (oc.serverNow, which each answer's Date narrows): a phone's clock may be minutes off,
  // and the server refuses a position from the future. Never before the last one taken: the server
  // keeps the later fix of a courier's, and the estimate of its clock may move back by a fraction
  // of a second between two fixes that close.
  function position(fix) {
    var c = fix.coords;
    var p = { lat: c.latitude, lng: c.longitude };
    if (known(c.accuracy)) p.accuracy_m = c.accuracy;
    if (known(c.heading)) p.heading = c.heading;
    if (known(c.speed)) p.speed_mps = c.speed;
    var at = Math.max(fix.timestamp + oc.serverNow() - Date.now(), lastTaken + 1);
    p.at = new Date(at).toISOString();
    return p;
  }

  function known(v) {
    return typeof v === 'number' && isFinite(v);
  }

  function sent(res) {
    showProblem('');
    lastAt.textContent = oc.formatTime(new Date().toISOString(), true);
    var n = res && res.orders || 0;
    reach.textContent = n ? '· seen on ' + n + (n === 1 ? ' order' : ' orders')
      : MISSED[res && res.missed] || MISSED.no_order_shows_courier;
    last.hidden = false;
    live = true; // the state line says so (pump)
  }

  // MISSED says why a position taken reached no map, by the server's word for it.
  var MISSED = {
    no_order_shows_courier: '· on no map now: customers see you once an order is out for delivery',
    order_stopped_showing: '· on no map now: an order has been out for hours; complete its delivery',
    near_another_customer: '· on no other map here: near another customer\'s door, only that customer sees you',
    fix_before_order_change: '· not shown: measured before you had the order; sending a newer one',
    newer_fix_taken: '· not shown: the map has a newer position of yours (is the phone\'s clock right?)',
    coarse_fix_held: '· not shown yet: this position is imprecise, the map keeps the last precise one a moment'
  };

  // retryable says whether a refused post may go through later as it is: not a refused token,
  // nor a position the server judged wrong (422).
  function retryable(err) {
    return err.status === 0 || err.status === 429 || err.status >= 500;
  }

  function refused(err) {
    if (err.retryAfter) notBefore = Math.max(notBefore, Date.now() + err.retryAfter * 1000);
    if (err.status === 401) { // the page's token: the whole page stops (console.js), sharing too
      oc.signedOut(oc.SIGNED_OUT, err);
      return;
    }
    if (err.status === 403) { // retrying cannot help
      stop(OFF);
      showProblem(('The server refused this page\'s token. ' + oc.sentence(err.message)).trim());
      return;
    }
    var why = {
      422: 'The server refused a position: ',
      429: 'Too many positions: the next goes in ' + (err.retryAfter || 1) + ' s. ',
      503: 'The server cannot take positions right now; trying again. '
    }[err.status] || '';
    showProblem((why + oc.sentence(err.message)).trim());
  }

  // The page remembers, in this browser (localStorage, per courier), that the courier turned
  // sharing on, and forgets it when the courier turns it off: a reload, or a phone that
  // restarted, would otherwise leave the customers' maps dark until the courier noticed.
  // Stopped for another reason (a refused token, the page signed out) it is still wanted.
  var REMEMBER = 'ordercast.sharing:' + courierId;

  function remember(on) {
    try {
      if (on) localStorage.setItem(REMEMBER, 'on');
      else localStorage.removeItem(REMEMBER);
    } catch (e) { /* storage off (a private window): nothing is remembered */ }
  }

  function remembered() {
    try {
      return localStorage.getItem(REMEMBER) === 'on';
    } catch (e) {
      return false;
    }
  }

  function showNote(text) {
    note.textContent = text;
    note.hidden = !text;
  }

  // resume turns sharing on again, as the page opens, when the courier had it on: by itself if
  // the browser's permission is granted already, since that asks the courier nothing; else
  // (the browser would ask, or cannot say) it says that a tap resumes it, and never asks the
  // courier without one. A permission refused since is said too, and forgotten with it.
  function resume() {
    if (!remembered()) return;
    var query = navigator.permissions && navigator.permissions.query
      ? navigator.permissions.query({ name: 'geolocation' }).then(function (st) { return st.state; })
      : Promise.reject(new Error('no permissions API'));
    query.catch(function () { return 'unknown'; }).then(function (state) {
      // The courier tapped meanwhile, or the page stopped.
      if (watch !== null || signedOut || !remembered()) return;
      if (state === 'denied') {
        remember(false);
        showNote('You were sharing your location before, but this browser no longer lets the page know where you are: allow location for this site in its settings, then tap Share my location.');
        return;
      }
      if (state !== 'granted') {
        showNote('You were sharing your location before this page was closed: tap Share my location to share it again.');
        return;
      }
      start();
      if (watch !== null) showNote('Sharing turned back on by itself: you had it on before this page was closed.');
    });
  }

  toggle.addEventListener('click', function () {
    showNote('');
    if (watch === null) {
      start();
      if (watch !== null) remember(true);
    } else {
      stop();
      remember(false);
    }
  });
  oc.onSignedOut(function () {
    signedOut = true;
    stop(OFF);
  });
  // A row that reaches the stage lets the waiting fix go.
  new MutationObserver(pump).observe(orders, { subtree: true, childList: true, attributeFilter: ['data-status', 'data-courier'] });
  resume();
})();
