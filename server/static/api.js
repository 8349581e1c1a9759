// ordercast's one door to the server. Every fetch and EventSource of the pages goes through
// here, so that credentials are added in one place.
(function () {
  'use strict';

  // Element.replaceChildren came in 2020 (Chrome 86, Safari 14, Firefox 78), and every page
  // draws with it: a customer's older phone (an iPhone 6 stays on iOS 12, an Android WebView
  // that is not updated opens links from a messaging app) followed the tracking link to a page
  // that stopped at "Loading…". Where it is missing, it is made of what those browsers have.
  if (!Element.prototype.replaceChildren) {
    Element.prototype.replaceChildren = function () {
      this.textContent = '';
      this.append.apply(this, arguments);
    };
  }

  var TERMINAL = { delivered: true, cancelled: true };

  // Forward stages in order, and how people read them.
  var STAGES = ['placed', 'confirmed', 'preparing', 'ready', 'out_for_delivery', 'delivered'];
  var LABELS = {
    placed: 'Placed', confirmed: 'Confirmed', preparing: 'Preparing', ready: 'Ready',
    out_for_delivery: 'Out for delivery', delivered: 'Delivered', cancelled: 'Cancelled'
  };

  // TOKEN is the actor token the console or a party's page was served with, sent as a bearer
  // header on API requests. Streams never carry it: EventSource cannot send a header, and a token
  // in a URL ends up in access logs, so each page's stream sends an HttpOnly cookie scoped to that
  // stream's path instead, set by the server with the page (the tracking page has only its cookie).
  var tokenMeta = document.querySelector('meta[name="ordercast-token"]');
  var TOKEN = tokenMeta ? tokenMeta.getAttribute('content') : '';

  // url builds a same-origin URL with query parameters.
  function url(path, params) {
    var u = new URL(path, window.location.href);
    Object.keys(params || {}).forEach(function (k) {
      if (params[k] !== undefined && params[k] !== '') u.searchParams.set(k, params[k]);
    });
    return u.toString();
  }

  // ApiError carries the API's stable code and its message for people, and, when the answer
  // said when to try again (429, 503), retryAfter in seconds. tokenRefused says that a token was
  // presented and refused (tokenRefused below), as against none presented where one is needed.
  function ApiError(status, code, message, retryAfter, tokenRefused) {
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.message = message;
    this.retryAfter = retryAfter || 0;
    this.tokenRefused = !!tokenRefused;
  }
  ApiError.prototype = Object.create(Error.prototype);

  // answerError is the ApiError of the refusal res, whose body (data, decoded; null when it had
  // none a page can read) names the API's code and message when the API made it (a proxy's does
  // not); retryAfter and bearer as for ApiError and tokenRefused.
  function answerError(res, data, retryAfter, bearer) {
    var err = data && data.error;
    return new ApiError(res.status, err ? err.code : 'http_' + res.status,
      err ? err.message : 'The server answered ' + res.status + '.', retryAfter, tokenRefused(res, bearer));
  }

  // tokenRefused says whether the refusal res was of a token the request presented: a 403 (a
  // good token that does not cover the request), or a 401 whose challenge says invalid_token
  // (expired, another server's signature: RFC 6750 §3.1; one that presented none gets no error
  // code). bearer: the request sent the page's token in its header, so a 401 refused it.
  function tokenRefused(res, bearer) {
    if (res.status === 403) return true;
    if (res.status !== 401) return false;
    return bearer || /error="invalid_token"/.test(res.headers.get('WWW-Authenticate') || '');
  }

  // The server's clock, as far as its answers' Date headers tell it: the server's time is within
  // [skewLo, skewHi] of this page's monotonic clock (performance.now()), narrowed by each answer
  // (its Date, whole seconds, was stamped between the request's start and the answer's arrival).
  // Positions carry the time of their fix on the server's terms, and a phone's clock may be
  // minutes off; it may also be set while the page is open (automatic time, a time zone's
  // network correction), which Date.now() follows and performance.now() does not: measured from
  // the monotonic clock, a step of the phone's clock changes nothing the page judges.
  var skewLo = -Infinity, skewHi = Infinity;
  function learnClock(res, sentAt) {
    var d = Date.parse(res.headers.get('Date') || '');
    if (isNaN(d)) return;
    var lo = d - performance.now(), hi = d + 1000 - sentAt;
    // Out of the bounds learned: the server's clock was set meanwhile, or this device slept
    // (where the monotonic clock stops while it sleeps): start again.
    if (lo > skewHi || hi < skewLo) {
      skewLo = lo;
      skewHi = hi;
      return;
    }
    skewLo = Math.max(skewLo, lo);
    skewHi = Math.min(skewHi, hi);
  }

  // serverNow is the server's time now, in milliseconds, as well as the page knows it; this
  // browser's own before the first answer.
  function serverNow() {
    return isFinite(skewLo) ? performance.now() + (skewLo + skewHi) / 2 : Date.now();
  }

  // backoff is the delay between attempts that may succeed later (a stream that failed, a page's
  // first load): one second, doubling up to 30. next() returns the delay to wait now, drawn at
  // random between half of it and the whole ("equal jitter"): the pages that lost one node, or
  // one network, together would otherwise come back together, each time.
  // (window.ordercast.backoffMs, the first delay, read at each attempt: the tests shorten it.)
  var BACKOFF_MS = 1000, BACKOFF_MAX_MS = 30000;
  function backoff() {
    var failed = 0; // attempts since the last reset
    return {
      next: function () {
        var d = Math.min(window.ordercast.backoffMs * Math.pow(2, failed), BACKOFF_MAX_MS);
        if (d < BACKOFF_MAX_MS) failed++;
        return d / 2 + Math.random() * d / 2;
      },
      reset: function () { failed = 0; }
    };
  }

  // savesData says the reader's browser asks to save data (Save-Data: a phone on a slow or
  // metered network, data saver on): a page then asks its stream for fewer positions.
  function savesData() {
    return !!(navigator.connection && navigator.connection.saveData);
  }

  // retryAfter reads an answer's Retry-After in seconds (the API sends a number, never a date);
  // 0 without one.
  function retryAfter(res) {
    var s = Number(res.headers.get('Retry-After'));
    return isFinite(s) && s > 0 ? s : 0;
  }

  // segment is an id as it is in a path: an id's ':' stays as it is, or the browser would not send
  // the cookies whose path names the id as it is (a party's page, an order's tracking cookie).
  function segment(id) {
    return encodeURIComponent(id).replace(/%3A/gi, ':');
  }

  // REQUEST_TIMEOUT_MS bounds a call of the API. Without it a request on a connection that died
  // silently (a phone between cells), or queued behind a browser's six connections to the host,
  // never settled: the row that sent it stayed busy for good, and a courier's page never posted
  // another position.
  // (window.ordercast.requestTimeoutMs, read at each call: the tests shorten it.)
  var REQUEST_TIMEOUT_MS = 20000;

  // UNREACHABLE is the event request dispatches on the document when a call found no network
  // (its fetch failed, or timed out): the page's streams are then not live (see stream).
  var UNREACHABLE = 'ordercast:unreachable';

  // request calls the JSON API and resolves with the decoded body, or rejects with an ApiError
  // holding the server's error message (code 'timeout' after REQUEST_TIMEOUT_MS without an
  // answer: a change may then have been made or not, which the page's stream will show).
  // timeoutMs, when given, bounds this call instead (a long poll is held longer than a call).
  function request(method, path, body, timeoutMs) {
    var ctrl = new AbortController();
    var timedOut = false;
    var timer = setTimeout(function () { timedOut = true; ctrl.abort(); }, timeoutMs || window.ordercast.requestTimeoutMs);
    var init = { method: method, headers: { Accept: 'application/json' }, credentials: 'same-origin', signal: ctrl.signal };
    if (TOKEN) init.headers.Authorization = 'Bearer ' + TOKEN;
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    var sentAt = performance.now();
    var lost = function () {
      document.dispatchEvent(new CustomEvent(UNREACHABLE));
      if (timedOut) throw new ApiError(0, 'timeout', 'The server did not answer in time; if this was a change, it may have been made.');
      throw new ApiError(0, 'network', 'The server cannot be reached.');
    };
    return fetch(url(path), init).then(function (res) {
      learnClock(res, sentAt);
      return res.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!res.ok) throw answerError(res, data, retryAfter(res), !!TOKEN);
        return data;
      }, lost);
    }, lost).finally(function () { clearTimeout(timer); });
  }

  // apiRefusal says whether data, the decoded body of the answer res, is the API's own error
  // answer (api/error.go: JSON, {"error":{"code":…,"message":…}}). Only the API's word makes a
  // refusal final: a captive portal's or a WAF's 403, a proxy's 401, is a page of HTML that
  // a network in the way answered, and the same request may pass once the network lets it.
  function apiRefusal(res, data) {
    var err = data && data.error;
    return /^application\/json\b/i.test(res.headers.get('Content-Type') || '') &&
      !!err && typeof err.code === 'string' && typeof err.message === 'string';
  }

  // BUSY_ADDRESS is what a page says while the server refuses its stream because the address it
  // comes from holds as many streams as one may (--max-streams-per-client): an address shared
  // with others (an office's, a carrier's), not this phone's fault, and "reconnecting" alone sent
  // people looking for one. The server says so in its refusal's comment (server/limits.go).
  var BUSY_ADDRESS = 'Too many live pages are open from your network (shared Wi-Fi, or your carrier\'s) ' +
    'for this one to connect now. It keeps trying; what it shows may be behind until then.';

  // refusal asks the server why a stream failed, which EventSource never tells: the same request
  // through fetch (the same URL, so the same stream cookie goes with it), cut off as soon as the
  // headers arrive (a refusal for a while reads its body, which ends at once), and given up
  // after requestTimeoutMs. It resolves with one of:
  //   {ended: true}: 204, and the page holds the stream's final event (finished()): nothing
  //     more will come.
  //   {rewound: true}: this server's 204 (its X-Request-ID) though the page does not hold the
  //     final event: the order ended at the seq the page is at, with another change than the
  //     page holds there; its history went back under the page (a database restored from an
  //     older copy) and was written again. A 204 without the header is a middlebox's, tried
  //     again.
  //   {err}: the API's own refusal of the credential (401, 403 with its JSON error body).
  //   {retryMs, why}: try again, no sooner than retryMs (the answer's Retry-After, 0 without
  //     one); why is a sentence for the page when the server said something people can use.
  function refusal(u, finished) {
    var ctrl = new AbortController();
    var timer = setTimeout(function () { ctrl.abort(); }, window.ordercast.requestTimeoutMs);
    var again = { retryMs: 0, why: '' };
    return fetch(u, { headers: { Accept: 'text/event-stream' }, credentials: 'same-origin', signal: ctrl.signal })
      .then(function (res) {
        if (res.status === 204) {
          if (finished()) return { ended: true };
          return res.headers.get('X-Request-ID') ? { rewound: true } : again;
        }
        var wait = retryAfter(res) * 1000;
        if (res.status === 200 && wait > 0) { // refused for a while (answerStreamRetry)
          return res.text().then(function (text) {
            return { retryMs: wait, why: /too many open streams from your address/.test(text) ? BUSY_ADDRESS : '' };
          });
        }
        if (res.status !== 401 && res.status !== 403) {
          ctrl.abort();
          return { retryMs: wait, why: '' };
        }
        return res.text().then(function (text) {
          var data = null;
          try { data = JSON.parse(text); } catch (e) { data = null; }
          // A stream's credential is its cookie, never a bearer header.
          return apiRefusal(res, data) ? { err: answerError(res, data, 0, false) } : again;
        });
      })
      .catch(function () { return again; })
      .finally(function () { clearTimeout(timer); });
  }

  // stream keeps an EventSource open on path, and opens another from the last id seen whenever
  // it fails, on its own timer: EventSource's own retry is every few seconds for ever, with no
  // backoff and no jitter, and it waits for ever on a request that gets no answer. So every
  // error closes it, and the next is opened after the backoff (jittered, reset by a frame), or
  // at once when the browser says it is back online or the page is looked at again. A
  // connection that failed without a frame (an error status, such as a proxy's 502; a node
  // that is draining, full or without its store answers 200 with retry:) is asked why: a
  // credential the API refused (401, 403) ends it, reported through onDenied, since retrying
  // cannot help; so does a 204 once the page holds the final event (opts.finished), as 'ended'.
  // opts:
  //   events:      {name: function(data, messageEvent)}, data decoded from JSON
  //   lastEventId: where to resume on the first connect
  //   onState:     called with 'connecting' | 'live' | 'reconnecting' | 'polling' | 'denied' |
  //                'ended', and for 'denied' the refusal's ApiError (showConnection's err)
  //   onDenied:    called with the ApiError of a refused credential
  //   onWhy:       called with a sentence saying why the stream cannot open now (BUSY_ADDRESS),
  //                and with '' once that no longer holds
  //   finished:    says whether the page holds the stream's final event (a 204 then ends it)
  //   poll, pollWaitMs: a stand-in for a path that never delivers a stream (see polling):
  //                poll(waitMs) asks the server once, holding at most waitMs, and returns a
  //                promise; pollWaitMs() is the wait the page wants for its next one
  // It returns {close(), listening()}: close ends it for good and reports 'ended'; listening says
  // whether the stream hears the server now (see listening below).
  //
  // A stream's heartbeats come every_s apart when it is quiet (the server's --heartbeat, 15 s by
  // default, DEFAULT_BEAT_MS until the first says); SILENT_BEATS of them without a frame means
  // the connection is dead (see stream).
  var DEFAULT_BEAT_MS = 15000;
  var SILENT_BEATS = 2.5;
  // LATE_MARGIN_MS is how much later than its heartbeat interval a frame may come (the network,
  // the server's timer) before the stream no longer counts as hearing the server (listening).
  // (window.ordercast.lateMarginMs, read at each use: the tests shorten it.)
  var LATE_MARGIN_MS = 3000;
  // A connection that has brought no frame one heartbeat interval and LATE_MARGIN_MS after it
  // was opened (18 s by default) is given up on, and another opened. The server writes retry:
  // and the stream's first frames (a heartbeat, the status) as soon as it takes the request, so
  // a first frame takes a round trip or two and the server's read of the order: seconds on the
  // slowest phone network. A connection that stays silent as long as an open one may between
  // two frames went nowhere: a request sent on a pooled keep-alive socket that died silently
  // (EventSource waits on it until the phone's TCP gives up, up to a quarter of an hour), or a
  // proxy that holds the response until it ends.
  // STALLS_TO_POLL such connections in a row (a minute, with the backoff) say the path never
  // delivers a stream (a buffering proxy, a scanner): the page then polls (opts.poll) while it
  // keeps trying the stream on its backoff, and the first stream that brings a frame takes over.
  var STALLS_TO_POLL = 3;
  // FRAMES are the event names an SSE stream of the API may carry.
  var FRAMES = ['heartbeat', 'status', 'courier', 'snapshot', 'location'];

  // HIDDEN_GRACE_MS is how long a tab may stay in the background, over HTTP/1.1, before its
  // stream lets go of its connection (see stream): a glance at another tab costs no reconnect.
  var HIDDEN_GRACE_MS = 5000;

  // sixConnections reports whether the page came over HTTP/1.1 (or the browser does not say),
  // where a browser opens at most six connections to a host and each stream holds one.
  function sixConnections() {
    var nav = window.performance && performance.getEntriesByType ? performance.getEntriesByType('navigation')[0] : null;
    var proto = nav && nav.nextHopProtocol;
    return !proto || proto === 'http/1.1' || proto === 'http/1.0';
  }

  // A page the browser keeps in its back/forward cache would keep its stream open, and HTTP/1.1
  // allows six connections to a host: a few pages back, no page of the site would load. So the
  // stream lets go of its connection when the page is hidden (pagehide), and opens again from
  // the last id seen when the page is shown from the cache (pageshow, persisted). For the same
  // reason, over HTTP/1.1, a tab left in the background lets go of its stream after
  // HIDDEN_GRACE_MS and opens it again from the last id when it is looked at: five tracking tabs
  // beside the console would otherwise leave its clicks no connection to go by. Over HTTP/2
  // (TLS) streams share one connection, and a tab in the background stays live (its title
  // follows the order).
  function stream(path, opts) {
    var es = null, timer = null, closed = false, hidden = false, wait = backoff();
    // silence is the watchdog of the open connection: until its first frame, the bound above;
    // then, as the stream asks for visible heartbeats (heartbeat=event), one as it opens and
    // then one whenever it has been quiet for every_s, a connection with nothing for
    // SILENT_BEATS of them has died without telling (a phone between cells, a NAT that dropped
    // it): EventSource would wait on it for ever, and the page say "live" over a stale status.
    // It is let go of, and opened again from the last id.
    var silence = null, beatMs = DEFAULT_BEAT_MS;
    // late marks the stream reconnecting once a frame is overdue (listening turns false), while
    // its connection is still given the rest of SILENT_BEATS: the header then says what the
    // map says ("Reconnecting"), not "live" beside it.
    var late = null;
    // heardAt is when the open connection last brought a frame (performance.now(): a step of
    // the phone's clock is no silence); 0: none open, or none since a call found no network.
    var heardAt = 0;
    // gen counts the connections opened and let go: the answer to why one was refused comes
    // later, and is stale if the page let go of the stream meanwhile (hidden, and maybe shown
    // again, with a stream of its own that the answer must not double).
    var gen = 0;
    // stalls counts the connections in a row given up on without a frame (STALLS_TO_POLL).
    var stalls = 0;
    // polling: the path delivers no stream and opts.poll stands in; pollGen counts the poll
    // loops, as gen the connections; pollHeardAt is when a poll last answered, pollMs the wait
    // of the one out; pollTimer the wait after a poll that failed.
    var polling = false, pollGen = 0, pollHeardAt = 0, pollMs = 0, pollTimer = null, pollWait = backoff();
    var why = ''; // what onWhy last said
    var lastId = opts.lastEventId ? String(opts.lastEventId) : '';
    var state = '';
    var finished = opts.finished || function () { return false; };
    function setState(s, err) {
      if (s === state) return;
      state = s;
      if (opts.onState) opts.onState(s, err);
    }
    function say(text) {
      if (text === why) return;
      why = text;
      if (opts.onWhy) opts.onWhy(text);
    }
    function stop() {
      gen++;
      if (timer) clearTimeout(timer);
      timer = null;
      clearTimeout(silence);
      silence = null;
      clearTimeout(late);
      late = null;
      heardAt = 0;
      if (es) es.close();
      es = null;
    }
    // again opens the next connection after delay, showing the page reconnecting (or still
    // polling: the next connection is the poll's try of the stream).
    function again(delay) {
      if (closed || hidden) return;
      if (!polling) setState('reconnecting');
      timer = setTimeout(open, delay);
    }
    // retryNow opens a connection at once where one is waiting for its backoff's delay (force:
    // or is out without its first frame, maybe on a socket of the network just left): the
    // browser is back online, or the page is looked at again, and the customer waits for it.
    function retryNow(force) {
      if (closed || hidden || state === 'live' || !(timer || force)) return;
      stop();
      open();
      if (pollTimer) {
        clearTimeout(pollTimer);
        poll(pollGen);
      }
    }
    // unreachable is a call of the API that found no network (UNREACHABLE): the stream's
    // connection has most likely gone with it, though its watchdog would say so only SILENT_BEATS
    // after its last frame, and a header saying "live" for that long over calls that fail tells
    // the user the wrong thing. It is not live (reconnecting) until its next frame is heard.
    function unreachable() {
      if (closed || state !== 'live') return;
      heardAt = 0;
      setState('reconnecting');
    }
    // heard is any frame of the open connection: the stream is live (an opened stream, not one
    // answered with a retry advice and closed, which EventSource reports as opened too), and the
    // watchdog starts again.
    function heard(mine) {
      if (closed || mine !== gen) return;
      heardAt = performance.now();
      wait.reset();
      stalls = 0;
      if (polling) stopPolling(); // the stream came through: it stands in for the polls again
      say('');
      setState('live');
      clearTimeout(silence);
      silence = setTimeout(function () {
        if (closed || mine !== gen) return;
        stop();
        again(wait.next());
      }, SILENT_BEATS * beatMs);
      clearTimeout(late);
      late = setTimeout(function () {
        if (!closed && mine === gen) setState('reconnecting');
      }, beatMs + window.ordercast.lateMarginMs);
    }
    // poll asks the server once through opts.poll, then again: at once after an answer (a long
    // poll waits on the server until something changes), after its own backoff after a failure.
    // A refusal of the credential that is the API's own ends the stream as the stream's would.
    function poll(mine) {
      pollTimer = null;
      if (closed || hidden || mine !== pollGen) return;
      pollMs = opts.pollWaitMs();
      opts.poll(pollMs).then(function () {
        if (closed || mine !== pollGen) return;
        pollHeardAt = performance.now();
        pollWait.reset();
        poll(mine);
      }, function (err) {
        if (closed || mine !== pollGen) return;
        pollHeardAt = 0;
        if (err && (err.status === 401 || err.status === 403) && String(err.code).indexOf('http_') !== 0) {
          deny(err);
          return;
        }
        pollTimer = setTimeout(function () { poll(mine); }, pollWait.next());
      });
    }
    function startPolling() {
      if (polling || !opts.poll) return;
      polling = true;
      setState('polling');
      poll(++pollGen);
    }
    function stopPolling() {
      polling = false;
      pollGen++;
      pollHeardAt = 0;
      clearTimeout(pollTimer);
      pollTimer = null;
    }
    function deny(err) {
      closed = true;
      stop();
      stopPolling();
      setState('denied', err);
      if (opts.onDenied) opts.onDenied(err);
    }
    var backgrounded = null; // the timer that lets go of a tab's stream in the background
    function onHide() {
      if (closed) return;
      hidden = true;
      stop();
      pollGen++; // polls too: the page opens both again when shown
      clearTimeout(pollTimer);
      pollTimer = null;
      pollHeardAt = 0;
    }
    function resume() {
      if (closed || !hidden) return;
      hidden = false;
      if (polling) poll(++pollGen);
      else setState('reconnecting');
      open();
    }
    function onShow(ev) {
      if (ev.persisted) resume();
    }
    function onVisibility() {
      clearTimeout(backgrounded);
      backgrounded = null;
      if (document.visibilityState === 'hidden') {
        if (sixConnections()) backgrounded = setTimeout(onHide, HIDDEN_GRACE_MS);
      } else if (hidden) {
        resume();
      } else {
        retryNow(false);
      }
    }
    function onOnline() { retryNow(true); }
    window.addEventListener('pagehide', onHide);
    window.addEventListener('pageshow', onShow);
    window.addEventListener('online', onOnline);
    document.addEventListener('visibilitychange', onVisibility);
    document.addEventListener(UNREACHABLE, unreachable);
    function open() {
      if (timer) clearTimeout(timer);
      timer = null;
      var mine = ++gen;
      var opened = false, framed = false;
      es = new EventSource(url(path, { lastEventId: lastId, heartbeat: 'event', location_interval: opts.locationInterval }));
      es.addEventListener('heartbeat', function (ev) {
        var every = Number(JSON.parse(ev.data).every_s);
        if (isFinite(every) && every > 0) beatMs = every * 1000;
      });
      // Every frame the server sends counts, those the page reads nothing of included: a frame
      // puts the server's heartbeat off, so a board whose orders' couriers post positions gets
      // positions and no heartbeat, and would otherwise be taken for silent every few beats.
      FRAMES.forEach(function (name) {
        es.addEventListener(name, function () { framed = true; heard(mine); });
      });
      // No first frame in its bound: let go of, and another opened (a new EventSource, so a new
      // request the browser may send on a new socket; the one this request went on is closed).
      silence = setTimeout(function () {
        if (closed || mine !== gen) return;
        stop();
        if (++stalls >= STALLS_TO_POLL) startPolling();
        again(wait.next());
      }, beatMs + window.ordercast.lateMarginMs);
      es.onopen = function () { opened = true; };
      es.onerror = function () {
        if (closed || mine !== gen) return;
        // Closed by the browser (an error status), or opened and ended without a frame (a
        // refusal for a while, 200 and retry:): asked why. Ended after frames, or never opened
        // (no network, the server down): opened again after the backoff's delay, which a
        // stream that was heard has just reset.
        var ask = es.readyState === EventSource.CLOSED || (opened && !framed);
        var failed = es.url;
        stop();
        if (!ask) {
          again(wait.next());
          return;
        }
        if (!polling) setState('reconnecting');
        var now = gen;
        refusal(failed, finished).then(function (r) {
          // Hidden: it opens again when shown. Another generation: it was let go of (and maybe
          // shown again, with a connection of its own since), or a frame came meanwhile.
          if (closed || hidden || now !== gen) return;
          if (r.ended) {
            closed = true;
            stopPolling();
            setState('ended');
            return;
          }
          if (r.err) {
            deny(r.err);
            return;
          }
          if (r.rewound) {
            reload();
            return;
          }
          say(r.why);
          again(Math.max(wait.next(), r.retryMs));
        });
      };
      Object.keys(opts.events).forEach(function (name) {
        es.addEventListener(name, function (ev) {
          if (closed) return;
          if (ev.lastEventId) lastId = ev.lastEventId;
          opts.events[name](JSON.parse(ev.data), ev);
        });
      });
      // The order's history went back under the stream (its database lost its last changes):
      // seqs this page holds may now be other changes, which a resume would skip, and the page
      // shows what it was sent by seq. It is loaded again, and shows the order as it is.
      es.addEventListener('end', function (ev) {
        if (closed || mine !== gen) return;
        var end = {};
        try { end = JSON.parse(ev.data); } catch (e) { /* another server's end: resumed as any */ }
        if (end.reason === 'history_rewritten') reload();
      });
    }
    // reload loads the page again, which shows the order as the server holds it now: what the
    // page holds is of a history that went back under it.
    function reload() {
      closed = true;
      stop();
      stopPolling();
      location.reload();
    }
    setState('connecting');
    open();
    onVisibility(); // a tab opened in the background (a middle click) is hidden from the start
    return {
      close: function () {
        if (closed) return;
        closed = true;
        stop();
        stopPolling();
        clearTimeout(backgrounded);
        window.removeEventListener('pagehide', onHide);
        window.removeEventListener('pageshow', onShow);
        window.removeEventListener('online', onOnline);
        document.removeEventListener('visibilitychange', onVisibility);
        document.removeEventListener(UNREACHABLE, unreachable);
        setState('ended');
      },
      // listening says whether the stream hears the server now: a connection is open (not let go
      // of while the page is hidden, nor between two) and its last frame is no older than the
      // heartbeat interval and LATE_MARGIN_MS (a quiet server sends a heartbeat every interval),
      // and no call of the API has found no network since (unreachable); or, polling, the last
      // poll answered no longer ago than the wait of the one out and LATE_MARGIN_MS.
      // What a page judges from what has not come (the map's "location lost") it judges only
      // while the stream listens: otherwise nothing could have come. The state is 'reconnecting'
      // once a frame is overdue (late), though the connection is given SILENT_BEATS before it is
      // let go of, and while a hidden page let go of it.
      listening: function () {
        if (closed) return false;
        var now = performance.now();
        if (heardAt > 0 && now - heardAt <= beatMs + window.ordercast.lateMarginMs) return true;
        return polling && pollHeardAt > 0 && now - pollHeardAt <= pollMs + window.ordercast.lateMarginMs;
      }
    };
  }

  // SIGNED_OUT is what a party's page says when the server no longer takes the token its link
  // handed over (a change answered 401: it expired mid-shift, or was revoked). The link holds
  // that same token, so opening it again cannot help: the page says to ask for a new one, in the
  // words the server uses when a page is opened with a token it no longer takes
  // (data-ask-new-link, party_pages.go's askNewLink). A demo page's token was minted by the
  // server with a secret of its own, which a restart replaced: a reload mints a new one
  // (data-demo).
  var DEMO = !!document.body && document.body.dataset.demo === 'true';
  var SIGNED_OUT = DEMO ? 'This demo page\'s sign-in is no longer accepted (the demo server restarted, or it expired): reload the page.'
    : 'Your sign-in has expired: ' + ((document.body && document.body.dataset.askNewLink) || 'ask for a new link.');

  // signedOut tells the page's scripts that the server no longer takes the page's token, and
  // why (a sentence for the page), with the refusal's ApiError (err); each stops what needs the
  // token (onSignedOut: fn(why, err)).
  function signedOut(why, err) {
    document.dispatchEvent(new CustomEvent('ordercast:signedout', { detail: { why: why, err: err } }));
  }

  function onSignedOut(fn) {
    document.addEventListener('ordercast:signedout', function (ev) { fn(ev.detail.why, ev.detail.err); });
  }

  // CONNECTION is what the header's indicator says in each state of a stream. Denied says whether
  // a token was refused (tokenRefused: expired, wrong signature, not this page's) or none was
  // given: "needs a token" of a refused one sent people looking for a token they had.
  var CONNECTION = {
    connecting: 'connecting', live: 'live', reconnecting: 'reconnecting', ended: 'ended',
    polling: 'checking for updates', denied: 'needs a token', refused: 'token refused'
  };

  // showConnection mirrors a stream's state in the header's indicator; for 'denied', err is the
  // refusal (an ApiError, or {tokenRefused: …} where the server said so with the page).
  // The indicator is a status region, which says "Connection: " before the state to a screen
  // reader (a bare "live" means nothing heard alone), and is quiet (aria-live off) while the
  // page opens: that it connects, and then is live, is what every page does and tells nobody
  // anything. From the first other state on, or once live, it says each change.
  function showConnection(el, s, err) {
    var quiet = el.getAttribute('aria-live') === 'off';
    if (quiet && s !== 'connecting' && s !== 'live') el.removeAttribute('aria-live');
    el.dataset.state = s;
    var text = s === 'denied' && err && err.tokenRefused ? CONNECTION.refused : (CONNECTION[s] || s);
    var shown = el.querySelector('.conn-state') || el;
    if (shown.textContent !== text) shown.textContent = text;
    // Speaking from the next change on: not in this task, which the region would hear.
    if (quiet && s === 'live') setTimeout(function () { el.removeAttribute('aria-live'); }, 0);
  }

  // sentence makes one of the API's messages ("a tracking token is required") a sentence to
  // show on a page.
  function sentence(text) {
    text = String(text || '').trim();
    if (!text) return '';
    return text.charAt(0).toUpperCase() + text.slice(1) + (/[.!?]$/.test(text) ? '' : '.');
  }

  // WHERE is how the note of a change a page makes says on which page it was made, by the kind of
  // party whose page it is ('' the console); PAGE_VERBS are the changes the pages make.
  var WHERE = { restaurant: "on the restaurant's board", courier: "on the courier's page", '': 'in the console' };
  var PAGE_VERBS = ['created', 'set', 'assigned', 'unassigned'];

  // pageNote is the note of a change a page makes (verb, one of PAGE_VERBS) on the page of a
  // party of kind: "set on the restaurant's board". It says where the change was made, not why.
  function pageNote(verb, kind) {
    if (PAGE_VERBS.indexOf(verb) < 0) throw new Error('ordercast: no page note for ' + verb);
    return verb + ' ' + (WHERE[kind] || WHERE['']);
  }

  // PAGE_NOTES are every note pageNote makes: no reason to give a customer (reason).
  var PAGE_NOTES = new Set();
  PAGE_VERBS.forEach(function (verb) {
    Object.keys(WHERE).forEach(function (k) { PAGE_NOTES.add(pageNote(verb, k)); });
  });

  // reason is what a change's note (an event's) tells its reader of why it was made, as a
  // sentence ("Out of stock."), or '': no note, or one of the pages' own (pageNote), which says
  // only where the change was made ("set in the console") and is no reason to give a customer. Text only:
  // the page sets it as textContent.
  function reason(note) {
    var text = String(note || '').trim();
    return text && !PAGE_NOTES.has(text) ? sentence(text) : '';
  }

  // courierCancelled is what a courier is told of an order cancelled while it was theirs: not to
  // pick it up, or, once picked up (the food is with the courier), to ask their dispatcher what to
  // do with the food. Who cancelled it the page does not know.
  function courierCancelled(pickedUp) {
    return pickedUp ? 'Ask your dispatcher what to do with the food.' : 'Do not pick it up.';
  }

  // kitchenCancelled is what a restaurant is told to do about its order, cancelled when it was at
  // stage from: not to start it, to stop preparing it, not to hand it to a courier, or, once its
  // courier had picked it up, nothing (the courier's page tells the courier to ask dispatch what to
  // do with the food). A stage not known (a page that did not see the order before it ended)
  // gets every instruction that may apply. The board and the tracking page's restaurant view
  // both say it.
  function kitchenCancelled(from) {
    switch (from) {
      case 'placed': case 'confirmed': return 'Do not prepare it.';
      case 'preparing': return 'Stop preparing it.';
      case 'ready': return 'Do not hand it to a courier.';
      case 'out_for_delivery': return 'Its courier had already picked it up.';
      default: return 'Stop preparing it, and do not hand it to a courier.';
    }
  }

  // customerCancelled is what a customer is told to do about their order id, cancelled: whom to
  // contact about a refund or a new order (restaurant, the one its details name, or '' for "the
  // restaurant"), quoting the order's id, which support asks for. Nothing is said of a charge or a
  // refund, which the pages do not know. The tracking page's box and the customer's page both say
  // it, so it is said here once: as the parts of a sentence (for append or replaceChildren), the
  // id an element of its own (.order-id: it wraps at any letter).
  function customerCancelled(restaurant, id) {
    var ref = document.createElement('span');
    ref.className = 'order-id';
    ref.textContent = id;
    return ['For a refund or a new order, contact ', restaurant ? bdi(restaurant) : 'the restaurant', ' and quote order ', ref, '.'];
  }

  // detailText is a detail of an order (its details are the client's JSON, in which a value may
  // be anything) as a page shows it: a plain value as it is, a list of plain values (allergies:
  // ["nuts", "gluten"]) joined with commas; '' for null, an empty list, or a value with structure
  // inside, which would show as "[object Object]".
  function detailText(v) {
    var plain = function (x) { return x !== null && typeof x !== 'object'; };
    if (plain(v)) return String(v);
    if (Array.isArray(v) && v.every(plain)) return v.map(String).join(', ');
    return '';
  }

  // detailString is the text of an order's details' field k (a name: its restaurant, its
  // customer), or '': details are the client's JSON, in which a name may be anything, and one
  // that is not text would show as "[object Object]".
  function detailString(o, k) {
    var v = o.details && o.details[k];
    return typeof v === 'string' ? v : '';
  }

  // detailName is a detail's key as a page names it: allergy_notes is "allergy notes".
  function detailName(k) {
    return k.replace(/_/g, ' ');
  }

  // timeMicros is an RFC 3339 time in microseconds since the epoch (0 if it is not one). The
  // store keeps microseconds and Date.parse only milliseconds: orders created within one
  // millisecond would tie, and a list lay them out of order.
  function timeMicros(s) {
    var ms = Date.parse(s);
    if (isNaN(ms)) return 0;
    var frac = /\.(\d+)/.exec(s);
    return ms * 1000 + (frac ? Number((frac[1] + '000000').slice(3, 6)) : 0);
  }

  // The formats of a time of day, made once: a board redraws thousands of rows, and each
  // toLocaleTimeString with options makes a formatter of its own. Short and medium times, not an
  // hour asked for as 'numeric' or '2-digit', which forces one of 6:02 and 06:02 on every clock.
  // Times are written in the pages' language (their lang, English), on the reader's clock: 12 or
  // 24 hours as the reader's locale has it (6:02 AM in the US, 06:02 in Germany). In the reader's
  // locale whole, an English sentence read "Preparing since 7:34 ص" to an Arabic reader, which a
  // screen reader spoke in an English voice.
  var LANG = document.documentElement.lang || 'en';
  var CLOCK = { hourCycle: new Intl.DateTimeFormat(undefined, { hour: 'numeric' }).resolvedOptions().hourCycle };
  // A browser that knows no timeStyle (Safari before 14.1, Firefox before 79) ignores it and
  // formats a date: "Placed since 12/7/2026", every time on the page a day. There the fields are
  // asked for one by one.
  function timeFormat(style, fields) {
    var f = new Intl.DateTimeFormat(LANG, Object.assign(style, CLOCK));
    return f.resolvedOptions().timeStyle ? f : new Intl.DateTimeFormat(LANG, Object.assign(fields, CLOCK));
  }
  var HOURS_MINUTES = timeFormat({ timeStyle: 'short' }, { hour: 'numeric', minute: '2-digit' });
  var WITH_SECONDS = timeFormat({ timeStyle: 'medium' }, { hour: 'numeric', minute: '2-digit', second: '2-digit' });
  var DATED = timeFormat({ dateStyle: 'medium', timeStyle: 'short' },
    { year: 'numeric', month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
  var WHOLE = timeFormat({ dateStyle: 'medium', timeStyle: 'medium' },
    { year: 'numeric', month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit', second: '2-digit' });

  // formatTime is a time of day as a page shows it, on the reader's clock: hours and minutes, as
  // an order's times are read ("Delivered at 12:41"); seconds only where they show that something
  // is live (a courier's last position sent). A time that is not one reads as nothing (a
  // formatter throws on it).
  function formatTime(iso, seconds) {
    var d = new Date(iso);
    return isNaN(d) ? '' : (seconds ? WITH_SECONDS : HOURS_MINUTES).format(d);
  }

  // timeElement is a <time> for iso showing formatTime's hours and minutes (dated: after its date,
  // for a list whose times span days, the console's Find), with the whole date and time, seconds
  // included, in its title and its datetime: nothing is lost to the reader who asks.
  function timeElement(iso, dated) {
    var t = document.createElement('time');
    t.dateTime = iso;
    var d = new Date(iso);
    t.textContent = !dated ? formatTime(iso) : isNaN(d) ? '' : DATED.format(d);
    t.title = isNaN(d) ? '' : WHOLE.format(d);
    return t;
  }

  // The sticky bar's title takes a line of its own when large text leaves it no room beside the
  // brand and the badge, so the bar may be two lines high or more. What scrolls into view (the
  // keyboard's focus, a link's target) must stop below it, whatever its height: the scroll
  // padding follows the bar (app.css's 4rem is for a page whose script has not run).
  // A bar that scrolls away (a short screen: app.css) needs none.
  function keepBelowTheBar() {
    var bar = document.querySelector('.bar');
    if (!bar || !window.ResizeObserver) return;
    var pad = function () {
      var sticky = getComputedStyle(bar).position === 'sticky';
      document.documentElement.style.scrollPaddingTop = sticky ? (bar.offsetHeight + 8) + 'px' : '0px';
    };
    new ResizeObserver(pad).observe(bar);
    window.addEventListener('resize', pad);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', keepBelowTheBar);
  else keepBelowTheBar();

  // isolate sets a name given from outside (a courier's, by dispatch) apart from the words around
  // it, between U+2068 and U+2069, as <bdi> would: a right-to-left name would otherwise draw the
  // words after it into its direction, such as a board's "(17)" after a Hebrew name, shown
  // before it.
  function isolate(text) { return '\u2068' + text + '\u2069'; }

  // bdi is isolate's element, for text a page shows among its own words where it builds nodes:
  // an Arabic restaurant's name before "· 2 items" left "2 · 24 مطعم الشام items" on a board. Its
  // text reads as the name alone (textContent), where isolate's marks stay in the string.
  function bdi(text) {
    var e = document.createElement('bdi');
    e.textContent = text;
    return e;
  }

  window.ordercast = {
    STAGES: STAGES,
    LABELS: LABELS,
    hasToken: TOKEN !== '',
    terminal: function (status) { return TERMINAL[status] === true; },
    label: function (status) { return LABELS[status] || status; },
    request: request,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    backoffMs: BACKOFF_MS,
    savesData: savesData,
    lateMarginMs: LATE_MARGIN_MS,
    segment: segment,
    stream: stream,
    backoff: backoff,
    serverNow: serverNow,
    showConnection: showConnection,
    SIGNED_OUT: SIGNED_OUT,
    DEMO: DEMO,
    signedOut: signedOut,
    onSignedOut: onSignedOut,
    sentence: sentence,
    pageNote: pageNote,
    reason: reason,
    courierCancelled: courierCancelled,
    customerCancelled: customerCancelled,
    kitchenCancelled: kitchenCancelled,
    detailText: detailText,
    detailString: detailString,
    detailName: detailName,
    formatTime: formatTime,
    timeMicros: timeMicros,
    timeElement: timeElement,
    isolate: isolate,
    bdi: bdi
  };
})();
