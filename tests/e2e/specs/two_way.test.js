// A two-way consultation in real browsers against the real binary: the robot page publishes its
// camera and microphone and shows the driving doctor; two doctors send their microphones and
// cameras and hear each other; a student hears the doctors and sends nothing.
//
// Every sender is made recognisable so that what arrives is measured, not assumed: the driver's
// camera is 320x180 and its microphone a 440 Hz tone, the consultant's 256x144 and 700 Hz
// (lib/media.js), with `degradationPreference: 'maintain-resolution'` on the senders so a busy
// machine does not change the sizes. Who hears whom is an FFT (AnalyserNode) of each page's
// received audio slots; who the robot shows is the decoded size of its presenter slot.
//
// The robot page names people from its booking's roster (asked with the robot's credential):
// "Dr Dana Okafor is driving"; without the roster it says what they are ("The driving doctor"),
// never an id.
//
// Each test brings the room into the state it needs (pages joined, who drives), so one failure
// does not fail the ones after it.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sleep } from '../lib/server.js';
import { seed } from '../lib/seed.js';
import {
  launch, newPage, browserTest, login, until, screenshot, text, unexpectedPageProblems,
} from '../lib/browser.js';
import { fakeDoctorMedia, refuseMedia, countOffers, listen, TONES } from '../lib/media.js';

/** Who is who: page name -> username, tone, camera size. */
const DOCTORS = {
  driver: { user: 'dana', hz: TONES.driver, width: 320, height: 180 },
  consultant: { user: 'chen', hz: TONES.consultant, width: 256, height: 144 },
};
const BOTH = [TONES.driver, TONES.consultant];
/** See consult.test.js: a DELETE that loses the race against the SFU's own close gets 404. */
const LATE_DELETE = /: HTTP 404 DELETE \/sessions\/[^/]+$/;

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {Awaited<ReturnType<typeof seed>>} */
let world;
/** @type {{robotId: string, credential: string, bookingId: string}} */
let ids;
/** @type {Record<string, import('playwright-core').Page>} */
const pages = {};
/** POST /whip requests per robot page (offers sent to the server). */
const whipPosts = new WeakMap();

before(async () => {
  server = await startServer();
  world = await seed(server, {
    users: {
      dana: ['Dr Dana Okafor', 'doctor'],
      chen: ['Dr Chen Wei', 'doctor'],
      lee: ['Dr Lee Haddad', 'doctor'],
      sam: ['Sam Student', 'student'],
    },
    robots: { r1: ['Rounds-1', 'Cardiology 3B', 'Tablet robot, bay 2'] },
    bookings: {
      consult: {
        robot: 'r1', doctor: 'dana', from: Date.now() - 30_000, minutes: 60, note: 'Ward round, bed 4',
        consultants: ['chen', 'lee'], observers: ['sam'],
      },
    },
  });
  ids = { robotId: world.robots.r1.id, credential: world.robots.r1.credential, bookingId: world.bookings.consult.id };
  browser = await launch();
});

after(async () => {
  const left = unexpectedPageProblems([LATE_DELETE]);
  if (browser) await browser.close();
  if (server) await server.stop();
  if (left.length) throw new Error(`browser problems after the last test:\n  ${left.join('\n  ')}`);
});

// --- pages ----------------------------------------------------------------------------------------

/** @param {import('playwright-core').Page|undefined} page */
async function sessionState(page) {
  if (!page || page.isClosed()) return null;
  return page.evaluate(() => {
    const b = /** @type {any} */ (window).__bedside;
    return b && b.session ? /** @type {string} */ (b.session.state) : null;
  }).catch(() => null);
}

/** @param {import('playwright-core').Page} page */
function participantId(page) {
  return page.evaluate(() => /** @type {string} */ (/** @type {any} */ (window).__bedside.session.participantId));
}

/**
 * Record what a page asks getUserMedia for (`window.__mediaConstraints`), before its scripts run:
 * through the DevTools protocol, which the page's CSP does not govern.
 * @param {import('playwright-core').Page} page
 */
async function recordMediaConstraints(page) {
  await page.addInitScript(() => {
    const w = /** @type {any} */ (window);
    w.__mediaConstraints = [];
    const md = navigator.mediaDevices;
    const gum = md.getUserMedia.bind(md);
    md.getUserMedia = (c) => {
      w.__mediaConstraints.push(JSON.parse(JSON.stringify(c ?? null)));
      return gum(c);
    };
  });
}

/**
 * The robot page, started through its form (the credential stays in the page's memory).
 * @param {{rosterFails?: boolean}} [opts] `rosterFails`: its roster requests fail (no network)
 */
async function robotPage(opts = {}) {
  if (!opts.rosterFails && (await sessionState(pages.robot)) === 'connected') return pages.robot;
  if (pages.robot) await pages.robot.context().close();
  delete pages.robot;
  const robot = await newPage(browser, { name: 'robot' });
  await countOffers(robot);
  await recordMediaConstraints(robot);
  if (opts.rosterFails) await robot.route('**/api/robots/*/roster', (r) => r.abort('failed'));
  let posts = 0;
  robot.on('request', (r) => { if (r.method() === 'POST' && new URL(r.url()).pathname.startsWith('/whip/')) posts += 1; });
  whipPosts.set(robot, () => posts);
  await robot.goto(`${server.base}/robot`);
  await robot.fill('#robot-id', ids.robotId);
  await robot.fill('#robot-credential', ids.credential);
  await robot.click('#robot-start');
  await robot.waitForSelector('#conn-state[data-state="connected"]', { timeout: 30_000 });
  pages.robot = robot;
  return robot;
}

/**
 * `name`'s consult view, in the room: the page there is, or a new one that logs in and joins.
 * @param {'driver'|'consultant'|'observer'} name
 */
async function person(name) {
  if ((await sessionState(pages[name])) === 'connected') return pages[name];
  if (pages[name]) await pages[name].context().close();
  const page = await newPage(browser, { name });
  if (name === 'observer') {
    // Count what it is asked, to show it is asked nothing.
    await page.addInitScript(() => {
      const w = /** @type {any} */ (window);
      w.__mediaAsked = 0;
      const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      navigator.mediaDevices.getUserMedia = (c) => { w.__mediaAsked += 1; return gum(c); };
    });
  } else {
    await fakeDoctorMedia(page, DOCTORS[name]);
  }
  await login(page, server.base, name === 'observer' ? 'sam' : DOCTORS[name].user);
  await page.locator(`#my-bookings li[data-booking-id="${ids.bookingId}"] button.join`).click({ timeout: 15_000 });
  await until(`${name} is connected to the room`, async () => (await sessionState(page)) === 'connected', 30_000);
  pages[name] = page;
  return page;
}

/**
 * Everyone in the room, the doctors' microphones and cameras on, the driver holding the lease.
 * @param {{rosterFails?: boolean}} [opts] a new robot page whose roster requests fail
 */
async function room(opts = {}) {
  const robot = await robotPage(opts);
  const driver = await person('driver');
  const consultant = await person('consultant');
  const observer = await person('observer');
  for (const page of [driver, consultant]) {
    for (const button of ['#mute-mic', '#camera-off']) {
      if ((await page.getAttribute(button, 'aria-pressed')) === 'true') await page.click(button);
    }
  }
  if ((await driver.getAttribute('#drive-status', 'data-state')) === 'other') {
    // The consultant drives (after a handoff): it hands back. (Not an administrator's revoke:
    // that takes control away from the booking for good.)
    const to = await participantId(driver);
    assert.ok(await consultant.evaluate((id) => /** @type {any} */ (window).__bedside.session.sendEvent({ type: 'handoff', to: id }), to));
  } else if ((await driver.getAttribute('#drive-status', 'data-state')) === 'nobody') {
    await driver.click('#request-control');
  }
  await driver.waitForSelector('#drive-status[data-state="you"]');
  const holder = await participantId(driver);
  await until('the robot page shows the driver', async () => (await robot.getAttribute('#driver', 'data-holder')) === holder);
  return { robot, driver, consultant, observer };
}

/**
 * The robot page's presenter slot: who the room says it carries, what it decodes.
 * @param {import('playwright-core').Page} robot
 */
function presenter(robot) {
  return robot.evaluate(async () => {
    const b = /** @type {any} */ (window).__bedside;
    const t = b.session.lines.videoSlots[0];
    let framesDecoded = 0;
    let frameWidth = 0;
    (await b.session.pc.getStats(t.receiver.track)).forEach((/** @type {any} */ s) => {
      if (s.type === 'inbound-rtp') {
        framesDecoded = s.framesDecoded || 0;
        frameWidth = s.frameWidth || 0;
      }
    });
    const v = /** @type {HTMLVideoElement} */ (document.querySelector('#presenter-video'));
    return { id: /** @type {string|null} */ (b.slots.video[0]), framesDecoded, frameWidth, videoWidth: v.videoWidth, videoHeight: v.videoHeight };
  });
}

/**
 * The presenter decodes `who`'s camera: the room says so, frames keep coming, and they are
 * `width` wide.
 * @param {import('playwright-core').Page} robot
 * @param {string} id
 * @param {number} width
 */
async function presenterShows(robot, id, width) {
  const first = await until(`the presenter decodes ${id} at ${width} px`, async () => {
    const p = await presenter(robot);
    return p.id === id && p.framesDecoded > 0 && p.videoWidth === width ? p : null;
  }, 30_000);
  return until('the presenter keeps decoding', async () => {
    const p = await presenter(robot);
    return p.framesDecoded >= first.framesDecoded + 10 && p.videoWidth === width ? p : null;
  });
}

/**
 * What `page` hears on its audio slots, as {hz: heard}.
 * @param {import('playwright-core').Page} page
 */
async function hears(page) {
  const r = await listen(page, 'slots', BOTH);
  return { r, [TONES.driver]: r[TONES.driver].heard, [TONES.consultant]: r[TONES.consultant].heard };
}

/**
 * `page` hears what `expected` says: first wait until the tones it should hear arrive (a new
 * slot takes a moment), then measure once more and require all of `expected` in that one
 * window, the tones it must not hear included. With `settle`, first wait until all of
 * `expected` holds (a tone that should go away, e.g. after a mute: the receiver's loss
 * concealment fades it out over a moment), then the same judging window.
 * @param {import('node:test').TestContext} t
 * @param {import('playwright-core').Page} page
 * @param {string} who
 * @param {Record<number, boolean>} expected
 * @param {{settle?: boolean}} [opts]
 */
async function expectHearing(t, page, who, expected, opts = {}) {
  /** @type {any} */
  let last = null;
  const wanted = Object.entries(expected).filter(([, want]) => opts.settle || want);
  try {
    await until(`${who} hears ${JSON.stringify(expected)}`, async () => {
      last = await hears(page);
      return wanted.every(([hz, want]) => last[hz] === want);
    }, 30_000);
  } catch (e) {
    throw new Error(`${who}: expected ${JSON.stringify(expected)}, measured ${JSON.stringify(last && last.r)}`);
  }
  // The judgement: one more window, all of `expected` at once.
  last = await hears(page);
  const levels = Object.entries(last.r).map(([hz, r]) => `${hz} Hz ${r.heard ? 'heard' : 'silent'} (peak ${r.peakDb} dBFS, ${r.aboveFloorDb} dB over the floor)`);
  t.diagnostic(`${who}: ${levels.join('; ')}`);
  for (const [hz, want] of Object.entries(expected)) {
    assert.equal(last[hz], want, `${who} ${want ? 'hears' : 'does not hear'} ${hz} Hz: ${JSON.stringify(last.r)}`);
  }
}

// --- tests ----------------------------------------------------------------------------------------

browserTest('the robot shows and hears the driver; the doctors hear each other, never themselves; the student hears both', { timeout: 180_000 }, async (t) => {
  const { robot, driver, consultant, observer } = await room();
  const driverId = await participantId(driver);
  const consultantId = await participantId(consultant);

  // The robot page decodes the driver's camera, at the driver's size, on its presenter slot.
  const p = await presenterShows(robot, driverId, DOCTORS.driver.width);
  assert.equal(p.videoHeight, DOCTORS.driver.height);
  // By name and role, from the roster.
  await until('the robot names the driver', async () => (await text(robot, '#driver')) === 'Dr Dana Okafor is driving'
    && (await text(robot, '#presenter-label')) === 'Dr Dana Okafor (driving)');
  assert.equal(await robot.getAttribute('#presenter-video', 'aria-label'), 'Camera of Dr Dana Okafor');
  // The robot asked for its microphone with echo cancellation (the doctors' voices come out of
  // its speaker), noise suppression and auto gain.
  const robotAsked = await robot.evaluate(() => /** @type {any} */ (window).__mediaConstraints);
  assert.equal(robotAsked.length, 1, `the robot page asks for its camera and microphone once: ${JSON.stringify(robotAsked)}`);
  assert.deepEqual([robotAsked[0].audio.echoCancellation, robotAsked[0].audio.noiseSuppression, robotAsked[0].audio.autoGainControl], [true, true, true]);

  // Who hears whom, measured.
  await expectHearing(t, robot, 'the robot', { [TONES.driver]: true, [TONES.consultant]: true });
  await expectHearing(t, driver, 'the driver', { [TONES.consultant]: true, [TONES.driver]: false });
  await expectHearing(t, consultant, 'the consultant', { [TONES.driver]: true, [TONES.consultant]: false });
  await expectHearing(t, observer, 'the observer', { [TONES.driver]: true, [TONES.consultant]: true });

  // Who speaks, as the room tells it: both doctors, on every page.
  for (const [who, page] of /** @type {const} */ ([['robot', robot], ['driver', driver], ['observer', observer]])) {
    await until(`${who} shows both doctors speaking`, async () => {
      const speaking = ((await page.getAttribute('#speaking', 'data-ids')) || '').split(' ');
      return speaking.includes(driverId) && speaking.includes(consultantId);
    });
  }
  await until('the driver sees who speaks by name', async () => /Speaking: .*Dr Chen Wei/.test(await text(driver, '#speaking')));
  await until('the robot shows who speaks by name', async () => {
    const line = await text(robot, '#speaking');
    return line.includes('Dr Dana Okafor') && line.includes('Dr Chen Wei') && line.endsWith('are speaking');
  });
  // Names, never ids: no session id or user id on the robot's screen.
  const onScreen = await robot.evaluate(() => /** @type {HTMLElement} */ (document.querySelector('#main')).innerText);
  for (const id of [driverId, consultantId, world.users.dana.id, world.users.chen.id]) {
    assert.ok(!new RegExp(`\\b${id}\\b`).test(onScreen), `the robot's screen shows no id (${id})`);
  }

  // The doctors see each other small: the driver's video slot carries the consultant.
  await until('the driver sees the consultant\'s camera', async () => driver.evaluate((id) => {
    const v = /** @type {HTMLVideoElement} */ (document.querySelector('#peer-video'));
    return v.dataset.participant === id && !v.hidden && v.videoWidth === 256;
  }, consultantId));
  assert.equal(await text(driver, '#peer-label'), 'Dr Chen Wei');
  // The link figures describe the robot's picture, not the doctor's on the slot.
  await until('the driver\'s link panel shows the robot\'s resolution', async () => {
    const robotWidth = await driver.evaluate(() => /** @type {HTMLVideoElement} */ (document.querySelector('#remote-video')).videoWidth);
    return robotWidth > 320 && (await text(driver, '#video-info')).startsWith(`${robotWidth}×`);
  });

  // The doctors were asked with echo cancellation, noise suppression and auto gain; the student
  // was asked nothing, and has no microphone or camera controls.
  const asked = await driver.evaluate(() => /** @type {any} */ (window).__fakeMedia.asked[0]);
  assert.deepEqual([asked.audio.echoCancellation, asked.audio.noiseSuppression, asked.audio.autoGainControl], [true, true, true]);
  assert.equal(await observer.evaluate(() => /** @type {any} */ (window).__mediaAsked), 0, 'the student is never asked for a microphone or camera');
  for (const sel of ['#mute-mic', '#camera-off', '#own-video']) assert.equal(await observer.locator(sel).count(), 0, `${sel} must not exist for a student`);
  assert.equal(await text(driver, '#own-media-status'), 'The others hear and see you.');
  await until('the driver sees their own camera', async () => driver.evaluate(() => {
    const v = /** @type {HTMLVideoElement} */ (document.querySelector('#own-video'));
    return !v.paused && v.videoWidth === 320;
  }));

  await screenshot(robot, 'robot-page');
  await screenshot(driver, 'consult-two-way', { fullPage: true });
});

browserTest('handing control over switches the robot\'s presenter at once (aim 1 s), without renegotiating', { timeout: 120_000 }, async (t) => {
  const { robot, driver, consultant } = await room();
  const driverId = await participantId(driver);
  const consultantId = await participantId(consultant);
  await presenterShows(robot, driverId, DOCTORS.driver.width);
  // Not to time a source's first keyframe: the consultant's camera already went out to a slot
  // (the driver's), so its encoder runs.
  await until('the consultant\'s camera is on its way', async () => driver.evaluate(() => {
    const v = /** @type {HTMLVideoElement} */ (document.querySelector('#peer-video'));
    return v.videoWidth === 256;
  }));

  // Keep what the robot page has now, and from now on every frame its presenter shows.
  await robot.evaluate(() => {
    const w = /** @type {any} */ (window);
    const s = w.__bedside.session;
    w.__before = { pc: s.pc, receiver: s.lines.videoSlots[0].receiver, track: s.lines.videoSlots[0].receiver.track, offers: w.__offers };
    w.__needed = 0;
    s.pc.addEventListener('negotiationneeded', () => { w.__needed += 1; });
    w.__frames = [];
    const v = /** @type {HTMLVideoElement} */ (document.querySelector('#presenter-video'));
    // `receiveTime` (the frame's last packet in) splits a slow switch into "the keyframe came
    // late" (server, sender's encoder) and "it came in time but showed late" (this decoder).
    const onFrame = (/** @type {number} */ _now, /** @type {VideoFrameCallbackMetadata} */ m) => {
      w.__frames.push({ t: Date.now(), width: m.width, rx: m.receiveTime ? Math.round(performance.timeOrigin + m.receiveTime) : null });
      v.requestVideoFrameCallback(onFrame);
    };
    v.requestVideoFrameCallback(onFrame);
  });
  const postsBefore = whipPosts.get(robot)();

  /** @type {number[]} */
  const delays = [];
  /**
   * `from` hands control to `to` (by name); how long until the robot's presenter shows a frame
   * `width` wide (the new holder's camera).
   * @param {import('playwright-core').Page} from @param {string} to @param {number} width
   */
  const handOver = async (from, to, width) => {
    await from.waitForSelector('#drive-status[data-state="you"]');
    await from.selectOption('#handoff-to', { label: to });
    const seen = await robot.evaluate(() => /** @type {any} */ (window).__frames.length);
    const t0 = Date.now();
    await from.click('#handoff');
    const shown = await until(`the presenter shows ${to}'s camera`, async () => robot.evaluate(
      ([n, w]) => /** @type {any} */ (window).__frames.slice(n).find((/** @type {any} */ f) => f.width === w) || null,
      [seen, width],
    ), 10_000);
    const delay = shown.t - t0;
    t.diagnostic(`handoff to ${to}: on the robot's screen ${delay} ms after the click (frame received at ${shown.rx === null ? '?' : shown.rx - t0} ms)`);
    delays.push(delay);
  };

  await handOver(driver, 'Dr Chen Wei', DOCTORS.consultant.width);
  await consultant.waitForSelector('#drive-status[data-state="you"]');
  const p = await presenterShows(robot, consultantId, DOCTORS.consultant.width);
  assert.equal(p.frameWidth, DOCTORS.consultant.width, 'the receiver\'s frameWidth is the consultant\'s');
  // The new holder by name (the roster already has every invitee).
  await until('the robot names the new driver', async () => (await text(robot, '#driver')) === 'Dr Chen Wei is driving'
    && (await text(robot, '#presenter-label')) === 'Dr Chen Wei (driving)');
  // Back and forth twice more on the same receiver: the aim (1 s) is judged on the median of the
  // three, so one switch slowed by a busy 2-core machine (a starved encoder) does not decide it;
  // every one of them must still land within 5 s.
  await handOver(consultant, 'Dr Dana Okafor', DOCTORS.driver.width);
  await handOver(driver, 'Dr Chen Wei', DOCTORS.consultant.width);
  const median = [...delays].sort((a, b) => a - b)[1];
  t.diagnostic(`handoffs: ${delays.join(', ')} ms (median ${median})`);
  assert.ok(median <= 1000, `the new driver is on the robot's screen within 1 s of the handoff (median of ${delays.join(', ')} ms)`);
  for (const d of delays) assert.ok(d <= 5000, `every handoff shows the new driver within 5 s (${delays.join(', ')} ms)`);

  const same = await robot.evaluate(() => {
    const w = /** @type {any} */ (window);
    const s = w.__bedside.session;
    return {
      pc: s.pc === w.__before.pc,
      receiver: s.lines.videoSlots[0].receiver === w.__before.receiver,
      track: s.lines.videoSlots[0].receiver.track === w.__before.track,
      inConnection: s.pc.getReceivers().includes(w.__before.receiver),
      offers: w.__offers - w.__before.offers,
      needed: w.__needed,
    };
  });
  assert.deepEqual(same, { pc: true, receiver: true, track: true, inConnection: true, offers: 0, needed: 0 },
    'the same connection, RTCRtpReceiver and track; no negotiationneeded, no new offer');
  assert.equal(whipPosts.get(robot)() - postsBefore, 0, 'no new offer went to the server');
});

browserTest('a muted microphone goes silent for the others, who see it muted', { timeout: 120_000 }, async (t) => {
  const { driver, consultant, observer } = await room();
  const consultantId = await participantId(consultant);
  await expectHearing(t, driver, 'the driver', { [TONES.consultant]: true });
  await consultant.click('#mute-mic');
  assert.equal(await consultant.getAttribute('#mute-mic', 'aria-pressed'), 'true');
  assert.equal(await text(consultant, '#own-media-status'), 'Your microphone is muted.');
  await expectHearing(t, driver, 'the driver', { [TONES.consultant]: false }, { settle: true });
  await expectHearing(t, observer, 'the observer', { [TONES.consultant]: false, [TONES.driver]: true }, { settle: true });
  await until('the others see the consultant muted', async () => /muted/.test(await text(driver, `#people li[data-participant="${consultantId}"]`)));
  // By keyboard, as by mouse.
  await consultant.focus('#mute-mic');
  await consultant.keyboard.press('Enter');
  assert.equal(await consultant.getAttribute('#mute-mic', 'aria-pressed'), 'false');
  await expectHearing(t, driver, 'the driver', { [TONES.consultant]: true });
});

browserTest('a driver who turns the camera off gives the robot\'s presenter to the consultant, still driving, and takes it back when it is on again', { timeout: 120_000 }, async (t) => {
  const { robot, driver, consultant, observer } = await room();
  const driverId = await participantId(driver);
  const consultantId = await participantId(consultant);
  await presenterShows(robot, driverId, DOCTORS.driver.width);
  /** @param {import('playwright-core').Page} page */
  const cameraOffShown = async (page) => /camera off/.test(await text(page, `#people li[data-participant="${driverId}"]`));

  const offAt = Date.now();
  await driver.click('#camera-off');
  assert.equal(await driver.getAttribute('#camera-off', 'aria-pressed'), 'true');
  assert.equal(await text(driver, '#own-media-status'), 'Your camera is off.');
  for (const [who, page] of /** @type {const} */ ([['consultant', consultant], ['observer', observer]])) {
    await until(`the ${who} sees the driver's camera off`, () => cameraOffShown(page));
  }
  // A black picture is no picture: the robot shows the next candidate, the only other camera.
  const p = await presenterShows(robot, consultantId, DOCTORS.consultant.width);
  t.diagnostic(`camera off: the presenter decodes ${JSON.stringify(p)}, 10 frames in ${Date.now() - offAt} ms after the click`);
  assert.equal(p.frameWidth, DOCTORS.consultant.width, 'the receiver\'s frameWidth is the consultant\'s');
  assert.equal(await robot.getAttribute('#presenter-video', 'data-participant'), consultantId);
  await until('the robot captions the consultant', async () => (await text(robot, '#presenter-label')) === 'Dr Chen Wei (consulting doctor, not driving)');
  // Turning the camera off is not giving up control: the lease stays where it was.
  assert.equal(await driver.getAttribute('#drive-status', 'data-state'), 'you');
  assert.equal(await robot.getAttribute('#driver', 'data-holder'), driverId);
  assert.equal(await text(robot, '#driver'), 'Dr Dana Okafor is driving');

  const onAt = Date.now();
  await driver.click('#camera-off');
  assert.equal(await driver.getAttribute('#camera-off', 'aria-pressed'), 'false');
  const back = await presenterShows(robot, driverId, DOCTORS.driver.width);
  t.diagnostic(`camera on again: the presenter decodes ${JSON.stringify(back)}, 10 frames in ${Date.now() - onAt} ms after the click`);
  assert.equal(await robot.getAttribute('#presenter-video', 'data-participant'), driverId);
  await until('the robot captions the driver again', async () => (await text(robot, '#presenter-label')) === 'Dr Dana Okafor (driving)');
  await until('the consultant no longer sees the driver\'s camera off', async () => !(await cameraOffShown(consultant)));
});

browserTest('a doctor who blocks the microphone and camera still joins, receiving only, and is told so', { timeout: 120_000, allow: [LATE_DELETE] }, async (t) => {
  await room();
  const page = await newPage(browser, { name: 'lee' });
  await refuseMedia(page);
  try {
    await login(page, server.base, 'lee');
    await page.locator(`#my-bookings li[data-booking-id="${ids.bookingId}"] button.join`).click({ timeout: 15_000 });
    await until('lee is connected to the room', async () => (await sessionState(page)) === 'connected', 30_000);
    assert.match(await text(page, '#own-media-status'), /blocked: you are in the room and can see and hear it, but nobody can hear or see you/);
    assert.equal(await page.isDisabled('#mute-mic'), true);
    assert.equal(await page.isDisabled('#camera-off'), true);
    await expectHearing(t, page, 'lee', { [TONES.driver]: true, [TONES.consultant]: true });
    const lee = await participantId(page);
    await until('the others see that lee sends nothing', async () => /no microphone or camera/.test(await text(pages.driver, `#people li[data-participant="${lee}"]`)));
  } finally {
    await page.context().close();
  }
  await sleep(200);
});

browserTest('without the roster the robot shows people by role, never by id', { timeout: 120_000, allow: [LATE_DELETE] }, async () => {
  const { robot, driver } = await room({ rosterFails: true });
  try {
    const driverId = await participantId(driver);
    await presenterShows(robot, driverId, DOCTORS.driver.width);
    await until('the robot page has tried the roster', async () => robot.evaluate(() => {
      const r = /** @type {any} */ (window).__bedside.roster;
      return r && r.requests > 0 && r.state === 'failed';
    }));
    await until('the robot says what the driver is', async () => (await text(robot, '#driver')) === 'The booking’s doctor is driving'
      && (await text(robot, '#presenter-label')) === 'The driving doctor');
    assert.equal(await robot.getAttribute('#presenter-video', 'aria-label'), 'Camera of the driving doctor');
  } finally {
    // The next test starts a robot page that may read the roster.
    await robot.context().close();
    delete pages.robot;
  }
  await sleep(200);
});
