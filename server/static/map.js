// The courier's map on the tracking page: an SVG drawn here from the positions on the order's
// stream, with no tiles or scripts from elsewhere (it works offline and under the strict CSP).
// It shows the restaurant, the drop-off, the courier and the path so far, the ETA counting down,
// "nearby", and "location lost" when positions stop arriving.
//
// Every time is the fix's own (its at, which the server judged against its clock when it took the
// position), measured on the server's clock (ordercast.serverNow): a stream that opens gets the
// newest position even when it is most of a minute old, a phone may flush a backlog, and this
// browser's clock may be minutes off.
(function () {
  'use strict';
  var SVG = 'http://www.w3.org/2000/svg';
  // LOST_AFTER_MS: positions come every few seconds; a fix this old and the marker is stale.
  // MAX_PATH bounds the points kept for the path drawn. SAY_EVERY_MS: a screen reader hears a
  // new ETA at most this often (nearby, lost, found again and under a minute at once: say).
  var LOST_AFTER_MS = 20000;
  var MAX_PATH = 500;
  var SAY_EVERY_MS = 60000;
  // BACK_GRACE_MS: a stream that comes back opens with what it missed, then the courier's newest
  // position; until it had the time to bring it, a position grown old meanwhile says nothing of
  // the courier.
  var BACK_GRACE_MS = 3000;
  // SAID_FOR_MS: what the live region said stays in it this long, then it is emptied: a reader
  // going through the page line by line found a minute-old ETA there, after the ETA shown
  // (window.ordercast.saidForMs, when set, instead: tests shorten it).
  var SAID_FOR_MS = 10000;

  function el(id) { return document.getElementById(id); }

  // minutesShown is an ETA of left seconds in whole minutes, as it is shown and said.
  function minutesShown(left) { return Math.max(1, Math.round(left / 60)); }

  // saidKey is what makes an ETA news to a screen reader: its minutes, in fives above five
  // minutes, so that it is said again only when the change matters; what is said is the minutes
  // shown beside it (it said "about 15 minutes" where the screen said 13).
  function saidKey(left) {
    if (left < 60) return 'eta:soon';
    var m = minutesShown(left);
    return 'eta:' + (m > 5 ? Math.round(m / 5) * 5 : m);
  }

  function minutes(m) { return m + (m === 1 ? ' minute' : ' minutes'); }

  // WORDS are what the map says: to the customer, who waits for the courier; on the courier's
  // view of the page (data-view="courier", opened from the courier's page) to the courier, who
  // drives to the drop-off; and on the restaurant's (data-view="restaurant", opened from its
  // board) to the restaurant, whose order the courier carries to the drop-off. eta is the ETA
  // shown, in whole minutes (an estimate from the courier's speed: seconds would promise a
  // precision it has not; it is counted down every second and changes when its minute does),
  // spoken what a screen reader hears (when saidKey changes), reassigned what it hears when the
  // order goes to another courier, or to none, on the way (null for the courier, whose page then
  // says the order is no longer theirs). The customer's and the restaurant's words name the
  // courier by the name its assignment gave, if any ("Omar is on the way").
  var WORDS = {
    customer: {
      onTheWay: function (name) { return (name ? window.ordercast.isolate(name) : 'Your courier') + ' is on the way'; },
      nearby: function (name) { return (name ? window.ordercast.isolate(name) : 'Your courier') + ' is nearby'; },
      soon: 'Arriving in under a minute',
      eta: function (left) { return 'Arriving in about ' + minutesShown(left) + ' min'; },
      spoken: function (left) {
        return left < 60 ? 'Arriving in under a minute.' : 'Arriving in about ' + minutes(minutesShown(left)) + '.';
      },
      reassigned: function (courierId, name) { return reassigned(courierId, name, 'your order'); }
    },
    courier: {
      onTheWay: function () { return 'On your way to the drop-off'; },
      nearby: function () { return 'You are near the drop-off'; },
      soon: 'Under a minute to the drop-off',
      eta: function (left) { return 'About ' + minutesShown(left) + ' min to the drop-off'; },
      spoken: toTheDropOff,
      reassigned: null
    },
    restaurant: {
      onTheWay: function (name) { return (name ? window.ordercast.isolate(name) : 'The courier') + ' is on the way to the drop-off'; },
      nearby: function (name) { return (name ? window.ordercast.isolate(name) : 'The courier') + ' is near the drop-off'; },
      soon: 'Under a minute to the drop-off',
      eta: function (left) { return 'About ' + minutesShown(left) + ' min to the drop-off'; },
      spoken: toTheDropOff,
      reassigned: function (courierId, name) { return reassigned(courierId, name, 'the order'); }
    }
  };

  // toTheDropOff is what a screen reader hears of the minutes left to the drop-off (WORDS.spoken).
  function toTheDropOff(left) {
    return left < 60 ? 'Under a minute to the drop-off.' : 'About ' + minutes(minutesShown(left)) + ' to the drop-off.';
  }

  // reassigned says that what (the order, in its reader's words) went to courier courierId, by
  // its name when its assignment gave one, or to none ('').
  function reassigned(courierId, name, what) {
    if (!courierId) return 'No courier has ' + what + ' now.';
    return (name ? window.ordercast.isolate(name) : 'Another courier') + ' has ' + what + ' now.';
  }

  // LABEL_MAX is the most letters a pin's label shows: the map is 100 units wide and a label about
  // two units a letter, centred on a pin that may sit near the edge; a longer name is cut with an
  // ellipsis, whole in the label's title.
  var LABEL_MAX = 14;
  function shortLabel(name) {
    var letters = Array.from(name.trim());
    return letters.length <= LABEL_MAX ? letters.join('') : letters.slice(0, LABEL_MAX - 1).join('').trim() + '\u2026';
  }

  // order is the order the page shows; loadTrail, when given, asks the server for the way its
  // courier came (GET …/trail), a promise of the answer; onETA, when given, hears the ETA the
  // map shows whenever it changes ('' when it shows none), which the page's title carries;
  // listening, when given, says whether the page's stream hears the server now (the stream's
  // listening: not let go of while the page is hidden, nor silent past its heartbeat).
  function Map(order, loadTrail, onETA, listening) {
    this.loadTrail = loadTrail || null;
    this.onETA = onETA || null;
    this.listening = listening || function () { return true; };
    this.backAt = 0;    // when the stream came back, until a position came since (connection)
    this.etaShown = ''; // the ETA's words shown, '' for none (showETA)
    this.section = el('map');
    this.svg = el('map-view');
    this.pickup = order.pickup || null;
    this.dropoff = order.dropoff || null;
    this.path = [];
    this.latest = null;
    this.fixAt = 0;     // the latest fix's time on the server's clock, in ms
    this.frame = '';    // the frame of the projection last drawn (projection().frame)
    this.ended = false;
    this.timer = null;
    this.said = '';     // what the announcer last said
    this.etaSaidAt = 0; // when it last said an ETA, on this browser's clock
    this.lostSaid = false; // it said the courier's location was lost, and not yet that it is back
    this.soonSaid = false; // the last ETA it said was under a minute
    this.offline = false; // the page's stream is down (connection)
    var view = el('track').dataset.view || 'customer';
    this.words = WORDS[view] || WORDS.customer;
    this.courierView = view === 'courier';
    this.name(order.courier_name || '');
    this.hasCourier = !!order.courier_id; // the order has a courier now (courier)
    // The courier's and the restaurant's views name the drop-off by its customer, when the
    // order says who; the customer's says "You".
    var customer = window.ordercast.detailString(order, 'customer');
    if (view !== 'customer' && customer) {
      var label = el('map-dropoff-label');
      label.querySelector('text').textContent = shortLabel(customer);
      var title = document.createElementNS(SVG, 'title'); // the whole name, on hover and to a screen reader
      title.textContent = customer;
      label.append(title);
    }
  }

  // project maps lat/lng into the 0..100 view box: an equirectangular projection around the
  // points shown, fitted with a margin, which is exact enough across a city.
  Map.prototype.projection = function () {
    var pts = this.path.slice();
    if (this.pickup) pts.push(this.pickup);
    if (this.dropoff) pts.push(this.dropoff);
    var minLat = Infinity, maxLat = -Infinity, minLng = Infinity, maxLng = -Infinity;
    pts.forEach(function (p) {
      minLat = Math.min(minLat, p.lat); maxLat = Math.max(maxLat, p.lat);
      minLng = Math.min(minLng, p.lng); maxLng = Math.max(maxLng, p.lng);
    });
    var k = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
    var w = Math.max((maxLng - minLng) * k, 0.002), h = Math.max(maxLat - minLat, 0.002);
    var span = Math.max(w, h) * 1.3; // a margin around the points, the same on both axes
    var cx = (minLng + maxLng) / 2 * k, cy = (minLat + maxLat) / 2;
    var project = function (p) {
      return { x: 50 + (p.lng * k - cx) / span * 100, y: 50 - (p.lat - cy) / span * 100 };
    };
    project.frame = [k, span, cx, cy].join(' '); // equal frames place every point alike
    return project;
  };

  // place puts a pin, a label or the courier at xy. It sets the CSS transform (in the map's
  // units: an SVG's px are its user units), which a stylesheet may animate: the courier glides to
  // its new position rather than jumping (app.css), unless the reader asked for less motion.
  // With at once, or when g was hidden, it is there with no transition: what appears would glide
  // in from the map's corner (Chromium runs it from the transform's none), and when the map's
  // frame changes every other mark jumps to its new place, so the courier does too rather than
  // glide for a moment off its path. The style with no transition is flushed before the
  // stylesheet's applies again.
  function place(g, xy, atOnce) {
    var jump = atOnce || g.hasAttribute('hidden');
    if (jump) g.style.transition = 'none';
    g.style.transform = 'translate(' + xy.x.toFixed(2) + 'px, ' + xy.y.toFixed(2) + 'px)';
    g.removeAttribute('hidden');
    if (jump) {
      g.getBoundingClientRect(); // the style with no transition takes effect here
      g.style.transition = '';
    }
  }

  Map.prototype.drawGrid = function () {
    var grid = el('map-grid');
    if (grid.childElementCount) return;
    for (var i = 10; i < 100; i += 10) {
      [['x1', i, 'y1', 0, 'x2', i, 'y2', 100], ['x1', 0, 'y1', i, 'x2', 100, 'y2', i]].forEach(function (a) {
        var line = document.createElementNS(SVG, 'line');
        for (var j = 0; j < a.length; j += 2) line.setAttribute(a[j], a[j + 1]);
        grid.append(line);
      });
    }
  };

  // labelSize is the height of a pin's label text in the map's units: 3.4 at the browser's usual
  // text size, more for a reader who enlarged it (the stylesheet sets it in rem).
  function labelSize(text) {
    return parseFloat(getComputedStyle(text).fontSize) || 3.4;
  }

  // labelPlace says where a pin's label goes, as its text's anchor and x, y from the pin: above
  // the pin, run inwards from it near a side of the map; below it when the courier is on the spot
  // above (or on the pin), where its dot would cover the label; and where the map's edge leaves
  // no room above or below (a large text size, a pin at the edge of the frame), beside the pin,
  // on the side away from the courier.
  function labelPlace(label, pin, courier) {
    var text = label.querySelector('text');
    var size = labelSize(text);
    var side = pin.x > 70 ? 'end' : pin.x < 30 ? 'start' : 'middle';
    var x = side === 'end' ? 3 : side === 'start' ? -3 : 0;
    // Half the text's width (about a unit a letter at 3.4 units high), and the courier's halo.
    var halfWidth = text.textContent.length * size / 3.4 + 6; // not its title's, the whole name
    var dy = courier ? courier.y - pin.y : Infinity;
    // Above, the label reaches from 5 units over the pin to its size more; then the halo.
    var covered = courier && Math.abs(courier.x - pin.x) < halfWidth && dy > -(10.6 + size) && dy < 1.5;
    var above = -5, below = 4.6 + size; // baselines: below, its top clears the pin as above
    if (!covered && pin.y + above - size >= 0) return { anchor: side, x: x, y: above };
    if (pin.y + below + 1 <= 100) return { anchor: side, x: x, y: below }; // covered, or no room above
    var right = courier ? courier.x <= pin.x : pin.x < 50;
    if (right && pin.x > 70) right = false;
    if (!right && pin.x < 30) right = true;
    return { anchor: right ? 'start' : 'end', x: right ? 4.5 : -4.5, y: size * 0.35 };
  }

  Map.prototype.draw = function () {
    var project = this.projection();
    var reframed = project.frame !== this.frame;
    this.frame = project.frame;
    this.drawGrid();
    var courierXY = this.latest && !this.ended ? project(this.latest) : null;
    [['map-pickup', this.pickup], ['map-dropoff', this.dropoff]].forEach(function (pin) {
      el(pin[0] + '-key').hidden = !pin[1]; // the legend names only what the map shows
      if (!pin[1]) return;
      var xy = project(pin[1]);
      place(el(pin[0]), xy);
      var label = el(pin[0] + '-label');
      place(label, xy);
      var text = label.querySelector('text');
      var at = labelPlace(label, xy, courierXY);
      text.dataset.anchor = at.anchor;
      text.setAttribute('x', String(at.x));
      text.setAttribute('y', String(at.y));
    });
    el('map-path').setAttribute('points', this.path.map(function (p) {
      var xy = project(p);
      return xy.x.toFixed(2) + ',' + xy.y.toFixed(2);
    }).join(' '));
    // The key names only what the map shows: no courier before its first position, and a path
    // is drawn from its second.
    el('map-courier-key').hidden = !courierXY;
    el('map-path-key').hidden = this.path.length < 2;
    var courier = el('map-courier');
    if (courierXY) {
      place(courier, courierXY, reframed);
      courier.dataset.lat = String(this.latest.lat);
      courier.dataset.lng = String(this.latest.lng);
    } else {
      courier.setAttribute('hidden', '');
    }
  };

  // update takes one location event's data.
  Map.prototype.update = function (loc) {
    if (this.ended) return;
    if (this.latest && loc.courier_id !== this.latest.courier_id) {
      // Another courier took the order over (the server never sends the old one's after that):
      // its path starts here, and its phone's clock is not comparable with the old one's.
      this.path = [];
      this.latest = null;
    }
    // An older fix (phones flush backlogs out of order), or the same one again (a resumed stream
    // opens with the newest position, which the page may have). Compared as times: Go leaves
    // trailing zeros out of the fraction, so as strings ':05Z' would sort after ':05.5Z'.
    if (this.latest && loc.at && this.latest.at && Date.parse(loc.at) <= Date.parse(this.latest.at)) return;
    var first = !this.latest;
    this.latest = loc;
    this.fixAt = Date.parse(loc.at);
    if (isNaN(this.fixAt)) this.fixAt = window.ordercast.serverNow(); // no time: as of now
    this.backAt = 0; // the stream back brought a position: it says where the courier is
    this.path.push({ lat: loc.lat, lng: loc.lng, at: this.fixAt });
    if (this.path.length > MAX_PATH) this.path.shift();
    // The courier's first position on this page: the way it came before is the server's.
    if (first) this.fetchTrail();
    this.section.hidden = false;
    this.draw();
    this.tick();
    var self = this;
    if (!this.timer) this.timer = window.setInterval(function () { self.tick(); }, 1000);
  };

  // courier takes a courier event: when the order goes to another courier (or to none) the old
  // one's marker, path and ETA go at once, not when its positions would have been lost; the new
  // courier shows from its first position. A customer's or a restaurant's screen reader is told
  // of the change of courier on the way (the ETA it heard went with the old one).
  Map.prototype.courier = function (courierId, courierName) {
    if (this.ended) return;
    this.hasCourier = !!courierId;
    this.name(courierName);
    if (!this.latest || this.latest.courier_id === courierId) return;
    if (this.words.reassigned) {
      this.said = '';
      this.say(this.words.reassigned(courierId, courierName), true);
    }
    this.latest = null;
    this.path = [];
    this.showETA('');
    el('nearby').hidden = true;
    el('lost').hidden = true;
    this.etaSaidAt = 0; // the new courier's first ETA is said when it comes
    this.lostSaid = this.soonSaid = false;
    this.describe();
    this.draw();
  };

  // name takes the name the order's courier was assigned under ('' for none): the customer's words
  // and the map's key then call the courier by it. The courier's own view says "You".
  Map.prototype.name = function (courierName) {
    this.courierName = courierName;
    if (!this.courierView) el('map-courier-name').textContent = courierName || 'Courier';
  };

  // say tells a screen reader text through the map's own polite live region, once: the ETA's
  // text ticks every second, and a live region there would speak every second. A new ETA (eta)
  // waits SAY_EVERY_MS after the last, unless urgent: nearby and lost are said at once, and so is
  // the ETA that says the courier is back, or under a minute away, which a minute's wait made
  // stale ("Location lost." stood for a minute while the screen said "under a minute"). An ETA
  // said starts the minute again. A prefix ("Location back. ") goes before text, once: the next
  // tick's text without it is not new.
  Map.prototype.say = function (text, urgent, eta, prefix, key) {
    key = key || text; // what makes it news: the text, or an ETA's saidKey
    if (key === this.said) return;
    if (eta && !urgent && this.etaSaidAt && performance.now() - this.etaSaidAt < SAY_EVERY_MS) return;
    if (eta) this.etaSaidAt = performance.now();
    this.said = key;
    var region = el('map-announce');
    region.textContent = (prefix || '') + text;
    window.clearTimeout(this.saidTimer);
    this.saidTimer = window.setTimeout(function () { region.textContent = ''; }, window.ordercast.saidForMs || SAID_FOR_MS);
  };

  // tick counts the ETA down from the fix's time and notices when positions stop (reckon), and
  // describes the map as it then is.
  Map.prototype.tick = function () {
    if (!this.latest) return;
    this.reckon();
    this.describe();
  };

  // reckon shows, and says, what the newest fix's age makes of the courier: lost, nearby, the
  // ETA left.
  Map.prototype.reckon = function () {
    var age = Math.max(0, window.ordercast.serverNow() - this.fixAt);
    var lost = age > LOST_AFTER_MS;
    el('lost').hidden = !lost;
    this.svg.dataset.lost = String(lost);
    // Nobody knows where a lost courier is: an ETA counting down meanwhile would be made up, and
    // "nearby" would say where it was.
    if (lost) {
      this.showETA(el('eta').textContent, true);
      el('nearby').hidden = true;
      // How long ago, so that a customer can tell a courier in a tunnel from one gone for good.
      var seen = 'last seen ' + (age < 60000 ? 'under a minute' : minutes(Math.floor(age / 60000))) + ' ago';
      // While the page cannot hear positions it cannot tell a courier who stopped sending from
      // positions it is not being sent: it blames neither, and says what it knows.
      var deaf = this.deaf();
      el('lost').textContent = (deaf ? 'Reconnecting' : 'Location lost') + ' \u00b7 ' + seen;
      if (!deaf) {
        this.say('Location lost.', true);
        this.lostSaid = true;
      }
      return;
    }
    // Found again after "Location lost." was said: at once, and saying so.
    var back = this.lostSaid ? 'Location back. ' : '';
    this.lostSaid = false;
    el('nearby').hidden = !this.latest.nearby;
    var w = this.words;
    if (this.latest.nearby) {
      this.say(w.nearby(this.courierName) + '.', true, false, back);
    }
    if (typeof this.latest.eta_s !== 'number') {
      this.showETA(w.onTheWay(this.courierName));
      this.say(w.onTheWay(this.courierName) + '.', !!back, true, back);
      return;
    }
    var left = Math.max(0, Math.round(this.latest.eta_s - age / 1000));
    el('eta').dataset.seconds = String(left);
    // Nearby is said beside the ETA, not instead of it: within the radius a slow courier may
    // still be minutes away.
    this.showETA(left < 60 ? w.soon : w.eta(left));
    if (this.latest.nearby) return;
    // Into the last minute is said at once too: a minute's wait would say it when it is over.
    this.say(w.spoken(left), !!back || (left < 60 && !this.soonSaid), true, back, saidKey(left));
    if (this.said === saidKey(left)) this.soonSaid = left < 60;
  };

  // describe makes what the map says in words beside it (the ETA, nearby, lost), as it shows
  // now, the drawing's description (aria-describedby): its label names what it draws and never
  // changes, and a reader who comes to the map hears where the courier is. Only the words shown:
  // a hidden element that aria-describedby names is read all the same.
  Map.prototype.describe = function () {
    var ids = ['eta', 'nearby', 'lost'].filter(function (id) { return !el(id).hidden && el(id).textContent; });
    if (ids.length) this.svg.setAttribute('aria-describedby', ids.join(' '));
    else this.svg.removeAttribute('aria-describedby');
  };

  // showETA shows the ETA's words (text, '' for none), or hides them (hidden: the courier is
  // lost), and tells the page when what shows changed (onETA): nothing, while the map is not
  // shown (an order with neither pin).
  Map.prototype.showETA = function (text, hidden) {
    var eta = el('eta');
    eta.textContent = text;
    eta.hidden = !!hidden;
    this.describe();
    var shown = hidden || this.section.hidden ? '' : text;
    if (shown === this.etaShown) return;
    this.etaShown = shown;
    if (this.onETA) this.onETA(shown);
  };

  // deaf says whether the page cannot now hear the courier's positions, so that one growing old
  // says nothing of the courier (tick): its stream is down (the header says reconnecting), let
  // go of while the page was hidden, or silent past its heartbeat (listening); or it came back
  // and has not yet had the time to bring the newest position (BACK_GRACE_MS).
  Map.prototype.deaf = function () {
    return this.offline || !this.listening() || (this.backAt > 0 && performance.now() - this.backAt < BACK_GRACE_MS);
  };

  // connection takes the state of the page's stream (ordercast.stream's onState): positions
  // cannot arrive while it is not live (deaf), or polling, which brings the newest position
  // with each answer (listening says whether they still come).
  Map.prototype.connection = function (state) {
    var on = state === 'live' || state === 'polling';
    var back = this.offline && on;
    this.offline = !on;
    if (back) this.backAt = performance.now();
    if (this.ended) return;
    // Back from a dropped stream: positions sent meanwhile were never sent to this page.
    if (back && this.latest) this.fetchTrail();
    this.tick();
  };

  // fetchTrail asks the server for the way the courier came: before the page opened, or while its
  // stream was down. The path is extra to the map: without it, it starts where the page began to
  // listen, so a failure is only logged.
  Map.prototype.fetchTrail = function () {
    if (!this.loadTrail) return;
    var self = this;
    this.loadTrail().then(function (res) { self.trail(res); }, function (err) {
      console.warn('ordercast: the way the courier came could not be read: ' + err.message);
    });
  };

  // trail takes the server's answer: where it and this page's path overlap in time, the trail (a
  // sketch of the same way, with what the page missed); before and after it, the page's own
  // points. A server's trail can be shorter than the page's path: it keeps it in memory, so a
  // node restarted, or one that joined mid-ride, has only the part since. Another courier's, or
  // one that arrives after the end, is not this map's to draw.
  Map.prototype.trail = function (res) {
    if (this.ended || !this.latest || !res || res.courier_id !== this.latest.courier_id || !res.trail.length) return;
    var fixes = res.trail.map(function (f) { return { lat: f.lat, lng: f.lng, at: Date.parse(f.at) }; });
    var first = fixes[0].at, last = fixes[fixes.length - 1].at;
    var before = this.path.filter(function (p) { return p.at < first; });
    var after = this.path.filter(function (p) { return p.at > last; });
    this.path = before.concat(fixes, after).slice(-MAX_PATH);
    this.draw();
  };

  // end stops the map for good: after delivery the courier is not followed any further, and a
  // map with no courier on it (pins and a path that stops nowhere) says nothing a delivered or
  // cancelled order needs, so it goes, as it is never shown on a page opened after the end.
  Map.prototype.end = function () {
    this.ended = true;
    this.section.hidden = true;
    if (this.timer) window.clearInterval(this.timer);
    this.timer = null;
    this.showETA('');
    el('nearby').hidden = true;
    el('lost').hidden = true;
    el('map-announce').textContent = '';
    this.describe();
    this.draw();
  };

  // show draws the restaurant and the drop-off once the courier is on the way, before the first
  // position arrives, and says so in the ETA's place: a map of two pins and no words reads as a
  // page that failed to load. Not as an ETA (showETA): the tab's title keeps the status.
  Map.prototype.show = function () {
    if (!this.pickup && !this.dropoff) return;
    this.section.hidden = false;
    if (!this.latest) { // an order without a courier (unassigned on the way) says nothing
      var eta = el('eta');
      eta.textContent = this.hasCourier ? this.words.onTheWay(this.courierName) : '';
      eta.hidden = !this.hasCourier;
      this.describe();
    }
    this.draw();
  };

  window.ordercastMap = function (order, loadTrail, onETA, listening) { return new Map(order, loadTrail, onETA, listening); };
})();
