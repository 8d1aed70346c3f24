// A whole consult in real browsers against the real binary: a robot page publishes its (fake)
// camera; the booking's doctor, a consultant and an observer (student) log in through the UI and
// join; everyone decodes video; the doctor drives with keys and the on-screen joystick and the
// robot page shows the commands; the observer has no controls and its forged frames are dropped by
// the SFU; control is handed off through the UI; the e-stop latches on the robot page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, iso, sleep, ADMIN_USERNAME, ADMIN_PASSWORD,
} from '../lib/server.js';
import {
  launch, newPage, until, expectDecoding, screenshot, text,
} from '../lib/browser.js';

const PASSWORD = 'correct-horse-battery';
/** @type {[string, Record<string, string>]} */
const OBSERVER_DROPS = ['bedside_control_frames_dropped_total', { reason: 'observer' }];

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {{robotId: string, credential: string, bookingId: string}} */
let seed;
/** @type {Record<string, Awaited<ReturnType<typeof newPage>>>} */
const pages = {};

before(async () => {
  server = await startServer();
  const admin = await server.login(ADMIN_USERNAME, ADMIN_PASSWORD);
  await admin.createUser('dana', 'Dr Dana Okafor', 'doctor', PASSWORD);
  const consultant = await admin.createUser('chen', 'Dr Chen Wei', 'doctor', PASSWORD);
  const student = await admin.createUser('sam', 'Sam Student', 'student', PASSWORD);
  const { robot, credential } = await admin.createRobot('Rounds-1', 'Cardiology 3B', 'Tablet robot, bay 2');
  const dana = await server.login('dana', PASSWORD);
  // Started a moment ago, so the booking's doctor may take control at once.
  const now = Date.now();
  const booking = await dana.call('POST', '/api/bookings', {
    robot_id: robot.id, starts_at: iso(now - 30_000), ends_at: iso(now + 60 * 60_000), note: 'Ward round, bed 4',
  });
  await dana.call('POST', `/api/bookings/${booking.id}/invitations`, { user_id: consultant.id, role: 'consultant' });
  await dana.call('POST', `/api/bookings/${booking.id}/invitations`, { user_id: student.id, role: 'observer' });
  seed = { robotId: robot.id, credential, bookingId: booking.id };
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

/**
 * Log in through the UI and join the booking from "Your bookings".
 * @param {string} name
 * @param {string} username
 */
async function joinAs(name, username) {
  const page = await newPage(browser, { name });
  pages[name] = page;
  // A gamepad the test can move: the Gamepad API has no fake device flag in Chromium.
  await page.addInitScript(() => {
    const pad = { axes: [0, 0, 0, 0], buttons: Array.from({ length: 17 }, () => ({ pressed: false, touched: false, value: 0 })) };
    /** @type {any} */ (window).__pad = pad;
    Object.defineProperty(navigator, 'getGamepads', {
      value: () => [{ id: 'Test pad (standard)', index: 0, connected: true, mapping: 'standard', axes: pad.axes, buttons: pad.buttons, timestamp: performance.now() }],
    });
  });
  await page.goto(`${server.base}/`);
  await page.fill('#username', username);
  await page.fill('#password', PASSWORD);
  await page.click('#login-submit');
  const join = page.locator(`#my-bookings li[data-booking-id="${seed.bookingId}"] button.join`);
  await join.waitFor({ timeout: 15_000 });
  await join.click();
  await page.waitForSelector('#remote-video');
  return page;
}

/**
 * The robot page's current drive command, read from its DOM.
 * @param {import('playwright-core').Page} page
 */
async function robotDrive(page) {
  return {
    x: Number(await text(page, '#drive-x')),
    y: Number(await text(page, '#drive-y')),
    z: Number(await text(page, '#drive-z')),
    reason: await text(page, '#drive-reason'),
    received: Number(await text(page, '#frames-received')),
    obeyed: Number(await text(page, '#frames-obeyed')),
  };
}

test('the robot page publishes with its id and credential', { timeout: 60_000 }, async () => {
  const robot = await newPage(browser, { name: 'robot' });
  pages.robot = robot;
  await robot.goto(`${server.base}/robot`);
  await robot.fill('#robot-id', seed.robotId);
  await robot.fill('#robot-credential', 'wrong-credential');
  await robot.click('#robot-start');
  await until('a wrong credential is refused', async () => (await text(robot, '#robot-error')).includes('wrong credential'));
  await robot.fill('#robot-credential', seed.credential);
  await robot.click('#robot-start');
  await robot.waitForSelector('#conn-state[data-state="connected"]', { timeout: 30_000 });
  assert.equal(await text(robot, '#estop-state'), 'E-stop clear');
});

test('doctor, consultant and observer log in, join and all decode video', { timeout: 120_000 }, async () => {
  const doctor = await joinAs('doctor', 'dana');
  const consultant = await joinAs('consultant', 'chen');
  const observer = await joinAs('observer', 'sam');
  for (const [who, page] of [['doctor', doctor], ['consultant', consultant], ['observer', observer]]) {
    const s = await expectDecoding(/** @type {any} */ (page), /** @type {string} */ (who));
    assert.ok(s.width > 2 && s.height > 2, `${who} sees a real picture (${s.width}x${s.height})`);
  }
  // Everyone sees the whole room: the robot and three people.
  for (const page of [doctor, consultant, observer]) {
    await until('presence of 4', async () => (await page.locator('#people li[data-participant]').count()) === 4);
  }
  await until('the doctor sees names', async () => (await text(doctor, '#people')).includes('Dr Chen Wei'));
});

test('the observer has no controls at all, not even hidden ones', async () => {
  const observer = pages.observer;
  for (const sel of ['#drive-panel', '#estop', '#joystick', '#request-control', '#release-control', '#handoff', '#handoff-to', '#estop-clear']) {
    assert.equal(await observer.locator(sel).count(), 0, `${sel} must not exist for an observer`);
  }
  // A doctor has them.
  assert.equal(await pages.doctor.locator('#estop').count(), 1);
  assert.equal(await pages.consultant.locator('#estop').count(), 1);
});

test('the doctor takes control and drives with the keyboard', { timeout: 60_000 }, async () => {
  const { doctor, robot } = pages;
  await doctor.click('#request-control');
  await doctor.waitForSelector('#drive-status[data-state="you"]');
  const holder = await doctor.evaluate(() => /** @type {any} */ (window).__bedside.session.participantId);
  await until('the robot page shows the driver', async () => (await robot.getAttribute('#driver', 'data-holder')) === holder);
  await screenshot(doctor, 'consult-doctor');

  await doctor.click('#remote-video'); // focus the page, not a form field
  const before = await robotDrive(robot);
  await doctor.keyboard.down('KeyW');
  try {
    const d = await until('the robot drives forward', async () => {
      const r = await robotDrive(robot);
      return r.x > 0 && r.z === 0 ? r : null;
    });
    assert.equal(d.x, 16384, 'W without Shift is half speed');
    assert.equal(d.reason, 'frame');
    // Frames keep coming at the drive rate while the key is held (not just one).
    await until('frames keep arriving while the key is held', async () => (await robotDrive(robot)).obeyed >= before.obeyed + 8);
    await until('still driving', async () => (await robotDrive(robot)).x === 16384);
  } finally {
    await doctor.keyboard.up('KeyW');
  }
  await until('the robot stops on release', async () => {
    const r = await robotDrive(robot);
    return r.x === 0 && r.y === 0 && r.z === 0;
  });
  const log = await text(robot, '#drive-log');
  assert.match(log, /frame\s+x=16384 y=0 z=0/, 'the command is logged on the robot page');
});

test('the doctor drives with the on-screen joystick (pointer events)', { timeout: 60_000 }, async () => {
  const { doctor, robot } = pages;
  const box = await doctor.locator('#joystick').boundingBox();
  assert.ok(box, 'joystick is on screen');
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  await doctor.mouse.move(cx, cy);
  await doctor.mouse.down();
  try {
    // Up and to the right: forward while turning right (clockwise, negative angular z).
    await doctor.mouse.move(cx + box.width * 0.25, cy - box.height * 0.4, { steps: 5 });
    const d = await until('the robot follows the joystick', async () => {
      const r = await robotDrive(robot);
      return r.x > 20000 && r.z < 0 ? r : null;
    });
    assert.ok(d.x > -d.z, `mostly forward (${d.x}, ${d.z})`);
  } finally {
    await doctor.mouse.up();
  }
  await until('the robot stops when the joystick is let go', async () => {
    const r = await robotDrive(robot);
    return r.x === 0 && r.z === 0;
  });
});

test('the doctor drives with a gamepad', { timeout: 60_000 }, async () => {
  const { doctor, robot } = pages;
  // Left stick pushed forward (axis 1 negative) and right stick to the left (turn left).
  await doctor.evaluate(() => { const p = /** @type {any} */ (window).__pad; p.axes[1] = -0.8; p.axes[2] = -0.5; });
  try {
    await until('the robot follows the gamepad', async () => {
      const r = await robotDrive(robot);
      return r.x > 20000 && r.z > 0 ? r : null;
    });
  } finally {
    await doctor.evaluate(() => { const p = /** @type {any} */ (window).__pad; p.axes[1] = 0.05; p.axes[2] = 0; });
  }
  await until('a resting stick stops the robot', async () => {
    const r = await robotDrive(robot);
    return r.x === 0 && r.z === 0;
  });
});

test('frames forged on the observer page are dropped by the SFU', { timeout: 60_000 }, async () => {
  const { observer, robot } = pages;
  await screenshot(observer, 'consult-observer');
  await sleep(500); // let the doctor's last frames land
  const dropsBefore = await server.metric(...OBSERVER_DROPS);
  const robotBefore = await robotDrive(robot);
  const sent = await observer.evaluate(async () => {
    const { encode, driveFrame } = await import('/js/control_frame.js');
    const s = /** @type {any} */ (window).__bedside.session;
    let ok = 0;
    for (let i = 1; i <= 30; i++) {
      const f = encode({ ...driveFrame(10_000 + i, Math.floor(performance.now()), 32767, 0, 0), epoch: 999 });
      if (s.sendControl(f)) ok += 1;
      await new Promise((r) => setTimeout(r, 25));
    }
    // And the events it may not send.
    s.sendEvent({ type: 'estop' });
    s.sendEvent({ type: 'request_lease' });
    return ok;
  });
  assert.equal(sent, 30, 'the observer page could write to its control channel');
  const drops = await until('the SFU counts the observer drops', async () => {
    const v = await server.metric(...OBSERVER_DROPS);
    return v >= dropsBefore + sent ? v : null;
  }, 10_000);
  assert.ok(drops >= dropsBefore + sent);
  await sleep(300);
  const robotAfter = await robotDrive(robot);
  assert.equal(robotAfter.received, robotBefore.received, 'the robot received none of them');
  assert.equal(robotAfter.x, 0);
  assert.equal(await robot.getAttribute('#estop-state', 'data-latched'), 'false', 'an observer cannot latch the e-stop');
});

test('control is handed off through the UI', { timeout: 60_000 }, async () => {
  const { doctor, consultant, robot } = pages;
  await doctor.selectOption('#handoff-to', { label: 'Dr Chen Wei' });
  await doctor.click('#handoff');
  await consultant.waitForSelector('#drive-status[data-state="you"]');
  await doctor.waitForSelector('#drive-status[data-state="other"]');
  assert.match(await text(doctor, '#drive-status'), /Dr Chen Wei is driving/);
  const holder = await consultant.evaluate(() => /** @type {any} */ (window).__bedside.session.participantId);
  await until('the robot page shows the new driver', async () => (await robot.getAttribute('#driver', 'data-holder')) === holder);

  // The old holder's keys no longer drive (its page stops sending; the SFU would drop them).
  await doctor.click('#remote-video');
  await doctor.keyboard.down('KeyW');
  await sleep(400);
  await doctor.keyboard.up('KeyW');
  assert.equal((await robotDrive(robot)).x, 0, 'the old holder does not drive');

  await consultant.click('#remote-video');
  await consultant.keyboard.down('ArrowLeft');
  try {
    await until('the robot turns left for the new holder', async () => (await robotDrive(robot)).z === 16384);
  } finally {
    await consultant.keyboard.up('ArrowLeft');
  }
  await until('and stops', async () => (await robotDrive(robot)).z === 0);
});

test('e-stop through the UI latches on the robot page until the driver clears it', { timeout: 60_000 }, async () => {
  const { doctor, consultant, observer, robot } = pages;
  // Any doctor may press it; here the one who is not driving.
  await doctor.click('#estop');
  await until('the robot page latches', async () => (await robot.getAttribute('#estop-state', 'data-latched')) === 'true');
  assert.equal(await text(robot, '#estop-state'), 'E-STOP LATCHED');
  for (const page of [doctor, consultant, observer]) {
    await page.waitForSelector('#state-banner[data-state="estop"]');
  }
  assert.equal(await doctor.getAttribute('#estop', 'aria-pressed'), 'true');
  assert.ok(await doctor.locator('#estop-clear').isHidden(), 'only the driver can clear');
  await screenshot(consultant, 'consult-estop');

  // While latched, the driver's keys move nothing.
  await consultant.click('#remote-video');
  await consultant.keyboard.down('KeyW');
  await sleep(500);
  await consultant.keyboard.up('KeyW');
  assert.equal((await robotDrive(robot)).x, 0);

  await consultant.click('#estop-clear');
  await until('the robot page clears', async () => (await robot.getAttribute('#estop-state', 'data-latched')) === 'false');
  await doctor.waitForSelector('#state-banner[data-state="live"]', { state: 'attached' });

  // And driving works again.
  await consultant.click('#remote-video');
  await consultant.keyboard.down('KeyW');
  try {
    await until('driving again after the clear', async () => (await robotDrive(robot)).x > 0);
  } finally {
    await consultant.keyboard.up('KeyW');
  }
  await until('stopped', async () => (await robotDrive(robot)).x === 0);
  await screenshot(robot, 'robot-page');
});

test('a consultant asks for control and the driver grants it', { timeout: 60_000 }, async () => {
  const { doctor, consultant } = pages;
  // The consultant drives now (after the handoff); the booking's doctor asks to have it back.
  assert.equal(await text(doctor, '#request-control'), 'Request control');
  await doctor.click('#request-control');
  await doctor.waitForSelector('#request-control:disabled');
  const request = consultant.locator('#lease-requests .request');
  await request.waitFor();
  assert.match(await request.textContent() || '', /Dr Dana Okafor asks for control/);
  await consultant.click('#lease-requests button.primary');
  await doctor.waitForSelector('#drive-status[data-state="you"]');
  await consultant.waitForSelector('#drive-status[data-state="other"]');
  assert.equal(await consultant.locator('#lease-requests .request').count(), 0);
});

test('the consult view is readable on a phone', { timeout: 30_000 }, async () => {
  const { consultant } = pages;
  await consultant.setViewportSize({ width: 390, height: 844 });
  await sleep(300);
  const estop = await consultant.locator('#estop').boundingBox();
  assert.ok(estop && estop.y + estop.height <= 844 && estop.y >= 0, 'the e-stop is on screen');
  await screenshot(consultant, 'consult-phone');
});

test('leaving ends the session and the others see it', { timeout: 30_000 }, async () => {
  const { observer, doctor } = pages;
  await observer.click('#leave');
  await observer.waitForSelector('#my-bookings');
  await until('presence shrinks', async () => (await doctor.locator('#people li[data-participant]').count()) === 3);
});
