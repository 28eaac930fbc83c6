"""A one-file Django project the backstage-uwsgi tests run under a real uWSGI."""
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="backstage-tests-only",
    ALLOWED_HOSTS=["localhost", "127.0.0.1"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
)

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402


def hello(request):
    return JsonResponse({
        "method": request.method,
        "path": request.path,
        "q": request.GET.get("q"),
        "host": request.get_host(),
        "trace": request.headers.get("X-Trace-Id"),
    })


@csrf_exempt
def upload(request):
    return HttpResponse(request.body, content_type="application/octet-stream")


urlpatterns = [path("hello/", hello), path("upload/", upload)]
application = get_wsgi_application()
