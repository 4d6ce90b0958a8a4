from django.urls import re_path

from console.scim import views

app_name = "scim"

# A trailing slash is accepted: some identity providers add one.
urlpatterns = [
    re_path(r"^Users/?$", views.UsersView.as_view(), name="users"),
    re_path(r"^Users/\.search/?$", views.UsersView.as_view(), name="users-search"),
    re_path(r"^Users/(?P<pk>[^/]+)/?$", views.UserView.as_view(), name="user-detail"),
    re_path(r"^Groups/?$", views.GroupsView.as_view(), name="groups"),
    re_path(r"^Groups/\.search/?$", views.GroupsView.as_view(), name="groups-search"),
    re_path(r"^Groups/(?P<pk>[^/]+)/?$", views.GroupView.as_view(), name="group-detail"),
    re_path(r"^Schemas/?$", views.SchemasView.as_view(), name="schemas"),
    re_path(r"^Schemas/(?P<schema_id>[^/]+)/?$", views.SchemasView.as_view(), name="schema-detail"),
    re_path(r"^ResourceTypes/?$", views.ResourceTypesView.as_view(), name="resource-types"),
    re_path(r"^ResourceTypes/(?P<type_id>[^/]+)/?$", views.ResourceTypesView.as_view(), name="resource-type-detail"),
    re_path(r"^ServiceProviderConfig/?$", views.ServiceProviderConfigView.as_view(), name="service-provider-config"),
    re_path(r"^\.search/?$", views.RootSearchView.as_view(), name="search"),
    re_path(r"^(?P<path>.*)$", views.scim_not_found, name="not-found"),
]
