import pytest
@pytest.mark.django_db
def test_probe(admin_client):
    r = admin_client.get("/admin/")
    print(r.status_code)
    print(r.content.decode()[:1500])
