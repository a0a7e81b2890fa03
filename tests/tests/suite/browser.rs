//! The device's status page in a real headless Chromium (Debian's, under
//! chromedriver): on linux-tap over the TAP (the browser in the device's
//! namespace) and through the 127.0.0.1 forwarder that `socklab run tap`
//! uses (the browser in the test's own namespace), and on mps2-an385 through
//! QEMU's user networking (127.0.0.1:<base>+80); and the bad link's counts
//! on the page of a linux-tap device that runs with one, against `INFO`.
//! Each test starts its own device and browser, so they run side by side.
//! The TAP test writes the screenshots in docs/screenshots.

use socklab_app::protocol::HTTP_PORT;
use socklab_host::forward::Forwarder;
use socklab_host::netns::HostNet;
use socklab_tests::browser::Browser;
use socklab_tests::page::{
    bad_link_counts, screenshot_dir, scripted_session, two_networks_on_the_page, Session,
    PAGE_BAD_LINK,
};
use socklab_tests::{BoardKind, Dut};

#[test]
fn tap_page_over_the_tap() {
    let _area = socklab_tests::area::enter(module_path!());
    let dut = Dut::start(BoardKind::Tap);
    let browser = Browser::start(dut.host_net());
    let seen = scripted_session(
        &browser,
        &Session {
            dut: &dut,
            url: format!("http://{}/", dut.addr(HTTP_PORT)),
            buffer_bar: true,
            screenshots: Some((screenshot_dir(), "page-tap")),
        },
    );
    eprintln!("linux-tap over the TAP: {seen:?}");
    dut.assert_running();
}

#[test]
fn tap_page_through_the_loopback_forwarder() {
    let _area = socklab_tests::area::enter(module_path!());
    let dut = Dut::start(BoardKind::Tap);
    // A free port on 127.0.0.1 for the device's port 80: the forwarder's
    // base is chosen to land on it.
    let local = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port();
    let base = local - HTTP_PORT;
    let forwarder = Forwarder::start(dut.host_net(), dut.addr(0).ip(), &[HTTP_PORT], base)
        .expect("forward 127.0.0.1 to the device");
    let url = format!("http://{}/", forwarder.local(HTTP_PORT).expect("port 80"));
    let browser = Browser::start(&HostNet::Current);
    let seen = scripted_session(
        &browser,
        &Session {
            dut: &dut,
            url,
            buffer_bar: true,
            screenshots: None,
        },
    );
    eprintln!("linux-tap through the forwarder: {seen:?}");
    dut.assert_running();
}

#[test]
fn mps2_page_through_qemu_user_networking() {
    let _area = socklab_tests::area::enter(module_path!());
    let dut = Dut::start(BoardKind::MPS2_USER);
    let browser = Browser::start(dut.host_net());
    let seen = scripted_session(
        &browser,
        &Session {
            dut: &dut,
            url: format!("http://{}/", dut.addr(HTTP_PORT)),
            buffer_bar: false,
            screenshots: None,
        },
    );
    eprintln!("mps2-an385 through QEMU user networking: {seen:?}");
    dut.assert_running();
}

#[test]
fn tap_page_shows_the_bad_links_counts() {
    let _area = socklab_tests::area::enter(module_path!());
    let dut = Dut::start_with(BoardKind::Tap, PAGE_BAD_LINK);
    let browser = Browser::start(dut.host_net());
    let url = format!("http://{}/", dut.addr(HTTP_PORT));
    let seen = bad_link_counts(&browser, &dut, &url);
    eprintln!("linux-tap with {}: {seen:?}", PAGE_BAD_LINK.join(" "));
    dut.assert_running();
}

#[test]
fn tap_page_shows_both_networks() {
    let _area = socklab_tests::area::enter(module_path!());
    let device = socklab_tests::networks::start_two_networks(BoardKind::Tap);
    let second = device.second_network().expect("two networks").clone();
    let dut = Dut::from_device(BoardKind::Tap, device);
    let browser = Browser::start(dut.host_net());
    let url = format!("http://{}/", dut.addr(HTTP_PORT));
    two_networks_on_the_page(&browser, &dut, &second, &url);
    dut.assert_running();
}
