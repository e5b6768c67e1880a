import datetime as dt
import pytest
from django.utils import timezone
from labapp.learning.models import Enrolment, Workshop
from labapp.learning.services import lab_start
from labapp.sandboxes.models import Sandbox
from tests.fixtures.browser import ARTIFACTS
from tests.e2e.test_learner_in_browser import sign_in

pytestmark = pytest.mark.django_db(transaction=True)

def shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"scratch-{name}.png"))

def test_scratch(redis_server, live_server, browser, learner, settings, tmp_path):
    settings.SANDBOX_HOME = tmp_path
    w = Workshop.objects.create(title="W", join_code="SCR1", lab_ids=["pss-baseline"],
        starts_at=timezone.now()-dt.timedelta(minutes=5), ends_at=timezone.now()+dt.timedelta(hours=2))
    Enrolment.objects.create(workshop=w, user=learner, display_name="Ada")
    lab_start(user=learner, lab_id="pss-baseline", workshop=w)
    Sandbox.objects.filter(owner=learner).update(state="ready", namespaces={"assets": "assets-k7m2q"},
        expires_at=timezone.now()+dt.timedelta(minutes=10, seconds=5))
    for name, vp, scheme in [("wide", 1400, "light"), ("phone", 390, "light"), ("wide-dark", 1400, "dark"), ("phone-dark", 390, "dark")]:
        ctx = browser.new_context(viewport={"width": vp, "height": 900}, color_scheme=scheme)
        page = ctx.new_page()
        sign_in(page, learner, live_server.url)
        page.goto(live_server.url + "/labs/pss-baseline/")
        page.wait_for_timeout(800)
        shot(page, f"{name}-top")
        if vp == 390:
            page.locator("#step-label-namespace").scroll_into_view_if_needed()
            shot(page, f"{name}-step2")
            page.locator(".workbench").scroll_into_view_if_needed()
            shot(page, f"{name}-bench")
        page.get_by_role("tab", name="Files").click()
        page.locator("details.file[data-path='assets/baseline-namespace/namespace.yaml'] summary").click()
        page.locator("details.file[data-path='assets/base/deployment.yaml'] summary").click()
        page.locator("details.file[data-path='assets/baseline-namespace/namespace.yaml']").scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        shot(page, f"{name}-files")
        print(page.evaluate("""(() => { const p = document.querySelector("details.file[data-path='assets/baseline-namespace/namespace.yaml'] pre"); return [p.scrollLeft, p.scrollWidth, p.clientWidth, p.innerText.length, getComputedStyle(p).color, p.getBoundingClientRect().top] })()"""))
        if name == "wide":
            page.wait_for_timeout(6000)
            shot(page, "warning")
        print(name, page.evaluate("document.documentElement.scrollWidth"))
        ctx.close()
