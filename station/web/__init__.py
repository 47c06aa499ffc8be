"""The live view: a web page served by the daemon (`station.web.server.WebService`).

`adapter.AppSource` is the only module that knows the App's snapshot fields;
`static/` is the page (plain HTML/CSS/JS, no build step); `fake.FakeApp`
stands in for the App in tests.
"""
